#!/bin/sh
# Runs inside qemu-system-aarch64, chrooted into the image's root (scripts/image/lib.sh): the
# second stage of debootstrap and the booth-independent setup. Its output is cached; the booth's
# own stage (stage-booth.sh) runs on a copy.
set -eux
# One initramfs, made at the end: under TCG each one (MODULES=most, for any board) takes ~10 min,
# and the second stage would make two (the kernel's install, then the trigger).
dpkg-divert --local --rename --divert /usr/sbin/update-initramfs.real --add /usr/sbin/update-initramfs
printf '#!/bin/sh\nexit 0\n' > /usr/sbin/update-initramfs
chmod 0755 /usr/sbin/update-initramfs

/debootstrap/debootstrap --second-stage

cat > /etc/apt/sources.list <<'SOURCES'
deb http://deb.debian.org/debian bookworm main non-free-firmware
deb http://deb.debian.org/debian bookworm-updates main non-free-firmware
deb http://security.debian.org/debian-security bookworm-security main non-free-firmware
SOURCES

# The Pi's firmware starts the kernel with cmdline.txt: root by label (the card is mmcblk0 on a
# Pi 4, something else on others), the serial console only (HDMI belongs to the booth), no
# blinking text cursor on the framebuffer.
sed -i 's/^#ROOTPART=.*/ROOTPART="LABEL=RASPIROOT"/; s/^#CONSOLES=.*/CONSOLES="ttyS1,115200"/' \
  /etc/default/raspi-firmware
echo "vt.global_cursor_default=0 consoleblank=0" > /etc/default/raspi-extra-cmdline
rm /usr/sbin/update-initramfs
dpkg-divert --local --rename --remove /usr/sbin/update-initramfs
# raspi-firmware's post-update hook copies the kernel, the initramfs and the device trees to
# the boot partition and writes config.txt and cmdline.txt.
update-initramfs -c -k "$(ls /lib/modules)"
test -s /boot/firmware/cmdline.txt

echo doppel-booth > /etc/hostname
printf '127.0.0.1\tlocalhost\n127.0.1.1\tdoppel-booth\n::1\tlocalhost ip6-localhost ip6-loopback\n' > /etc/hosts

cat > /etc/fstab <<'FSTAB'
LABEL=RASPIROOT  /              ext4  rw,noatime,errors=remount-ro  0 1
LABEL=RASPIFIRM  /boot/firmware vfat  rw,noatime,umask=0022         0 2
FSTAB

# Wired network by DHCP (systemd-networkd); eth0 on a Pi, enp0s* in qemu.
mkdir -p /etc/systemd/network
cat > /etc/systemd/network/50-wired.network <<'NET'
[Match]
Name=eth* en*

[Network]
DHCP=yes
NET
systemctl enable systemd-networkd systemd-resolved systemd-timesyncd
# SSH is off unless the first boot finds a key on the boot partition; host keys are made per
# board there, never shipped.
systemctl disable ssh.service
rm -f /etc/ssh/ssh_host_*
# No password for anyone: root stays locked.
passwd -l root
# A machine-id per board (systemd makes it on the first boot).
: > /etc/machine-id
rm -f /var/lib/dbus/machine-id

apt-get clean
rm -rf /var/lib/apt/lists/* /var/log/bootstrap.log /debootstrap
