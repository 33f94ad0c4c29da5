#!/bin/sh
# Runs inside qemu-system-aarch64, chrooted into a copy of the cached base (scripts/image/lib.sh):
# installs the booth's Debian package and the image's first-boot service.
set -eux
P=/doppel-payload
dpkg -i "$P"/doppel-device_*_arm64.deb

install -D -m 0755 "$P/image/firstboot" /usr/lib/doppel-image/firstboot
install -m 0644 "$P/image/doppel-firstboot.service" /etc/systemd/system/
systemctl enable doppel-firstboot.service
# The HDMI screen belongs to the booth: no login prompt drawn over its frames (there is no
# password to log in with anyway; SSH with a key, or the serial console, for maintenance).
systemctl mask getty@tty1.service
# The booth answers as <hostname>.local (systemd-resolved's mDNS responder).
mkdir -p /etc/systemd/resolved.conf.d /etc/systemd/network/50-wired.network.d
printf '[Resolve]\nMulticastDNS=yes\n' > /etc/systemd/resolved.conf.d/doppel-mdns.conf
printf '[Network]\nMulticastDNS=yes\n' > /etc/systemd/network/50-wired.network.d/doppel-mdns.conf

install -D -m 0644 "$P/image/README.txt" /boot/firmware/doppel/README.txt
mkdir -p /boot/firmware/doppel/trusted
printf 'doppel booth image: doppel-device %s on Debian %s\n' \
  "$(dpkg-query -W -f='${Version}' doppel-device)" "$(cat /etc/debian_version)" > /etc/doppel-image
systemctl is-enabled doppel-device.service
