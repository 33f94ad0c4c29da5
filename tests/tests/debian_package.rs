//! `make deb`: the cross-built booth as an arm64 Debian package. lintian finds nothing (one
//! justified suppression), `systemd-analyze security` rates the service's sandbox ≤ 4.0 ("OK"),
//! the config is a conffile (an upgrade keeps the operator's edits), and the binary inside is
//! the aarch64 booth. `make test` cross-builds it first and passes it in DOPPEL_AARCH64_BIN.

use std::path::PathBuf;
use std::process::Command;

use e2e_tests::{root, succeeded};

#[test]
fn the_booth_packages_as_a_clean_debian_package_with_a_hardened_service() {
    let bin = std::env::var_os("DOPPEL_AARCH64_BIN").map(PathBuf::from).expect(
        "DOPPEL_AARCH64_BIN is not set: run `make test`, which cross-builds doppel-device for aarch64",
    );
    let o = Command::new("bash")
        .arg(root().join("scripts/build-deb.sh"))
        .arg(&bin)
        .current_dir(root())
        .output()
        .unwrap();
    let out = succeeded(&o, "scripts/build-deb.sh");
    assert!(out.contains("lintian: clean"), "{out}");
    let exposure: f32 = out
        .lines()
        .find_map(|l| l.split("doppel-device.service: ").nth(1))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no exposure level in\n{out}"));
    assert!(exposure <= 4.0, "systemd-analyze security: {exposure}");
    let deb = out
        .lines()
        .find_map(|l| l.strip_prefix("package: "))
        .map(PathBuf::from)
        .unwrap();

    let control = dpkg_deb("-e", &deb);
    let conffiles = std::fs::read_to_string(control.path().join("conffiles")).unwrap();
    assert!(conffiles.lines().any(|l| l == "/etc/doppel/booth.toml"));
    let postinst = std::fs::read_to_string(control.path().join("postinst")).unwrap();
    assert!(postinst.contains("adduser --system"), "its own user");
    assert!(postinst.contains("deb-systemd-helper enable 'doppel-device.service'"));

    let tree = dpkg_deb("-x", &deb);
    let t = tree.path();
    let elf = std::fs::read(t.join("usr/bin/doppel-device")).unwrap();
    // ELF e_machine 183 = EM_AARCH64.
    assert_eq!(&elf[..4], b"\x7fELF");
    assert_eq!(u16::from_le_bytes([elf[18], elf[19]]), 183);
    for file in [
        "usr/share/doppel/models/retinaface-mnet025.onnx",
        "lib/systemd/system/doppel-device.service",
        "lib/udev/rules.d/60-doppel-device.rules",
        "usr/share/man/man1/doppel-device.1.gz",
        "usr/share/doc/doppel-device/booth.example.toml",
    ] {
        assert!(t.join(file).is_file(), "{file} in the package");
    }
    assert!(t.join("etc/doppel/trusted").is_dir());
    let unit = std::fs::read_to_string(t.join("lib/systemd/system/doppel-device.service")).unwrap();
    for line in [
        "Type=notify",
        "WatchdogSec=",
        "User=doppel",
        "StateDirectory=doppel",
    ] {
        assert!(unit.contains(line), "{line}");
    }
    // The detector the config names is the one packaged.
    let config = std::fs::read_to_string(t.join("etc/doppel/booth.toml")).unwrap();
    assert!(config.contains("/usr/share/doppel/models/retinaface-mnet025.onnx"));
}

/// The package's control files (`-e`) or its tree (`-x`), unpacked by dpkg-deb into a new folder.
fn dpkg_deb(what: &str, deb: &std::path::Path) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    succeeded(
        &Command::new("dpkg-deb")
            .arg(what)
            .arg(deb)
            .arg(dir.path())
            .output()
            .unwrap(),
        &format!("dpkg-deb {what}"),
    );
    dir
}
