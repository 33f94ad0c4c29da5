//! The trial a new bundle goes through, driven frame by frame as the booth loop drives it: a
//! failing live frame or a trial that runs out of time puts the previous bundle back in service.

mod common;

use std::time::Duration;

use device_firmware::models::ModelSlot;
use device_firmware::pipeline::FrameResult;
use device_firmware::store::Recovery;
use device_firmware::updates::{TrialPolicy, Updates};

fn archive(dir: &std::path::Path, serial: i64) -> Vec<u8> {
    let b = dir.join(format!("v{serial}"));
    common::write_bundle(&b, serial, true);
    shared_proto::archive::pack(&b).unwrap()
}

/// The update side of a booth whose state folder is `dir/state`.
fn open(dir: &std::path::Path, slot: &ModelSlot, policy: TrialPolicy) -> (Updates, Recovery) {
    Updates::open(
        &dir.join("state"),
        &[common::key_hex()],
        None,
        slot.clone(),
        policy,
    )
    .unwrap()
}

fn serving(slot: &ModelSlot) -> Option<u64> {
    slot.current().map(|b| b.manifest.serial)
}

#[test]
fn a_frame_error_or_the_deadline_ends_a_trial_with_a_rollback() {
    let dir = tempfile::tempdir().unwrap();
    let slot = ModelSlot::default();
    let policy = TrialPolicy {
        frames: 5,
        within: Duration::from_millis(800),
    };
    let (updates, _) = open(dir.path(), &slot, policy);
    let clean = FrameResult::default();
    let failed = FrameResult {
        error: Some("swap output is not finite".into()),
        ..Default::default()
    };

    // v2 passes: five clean frames.
    assert_eq!(updates.receive(&archive(dir.path(), 2)[..]).unwrap(), 2);
    updates.activate(2).unwrap();
    assert_eq!(serving(&slot), Some(2));
    for _ in 0..5 {
        updates.frame_done(Some(&clean));
    }
    assert!(updates.trial().is_none());
    assert_eq!(updates.record().current, Some(2));
    assert!(updates.record().trial.is_none());

    // v3 fails on its third live frame: v2 serves again, v3 is marked failed.
    updates.receive(&archive(dir.path(), 3)[..]).unwrap();
    updates.activate(3).unwrap();
    assert_eq!(serving(&slot), Some(3));
    updates.frame_done(Some(&clean));
    updates.frame_done(Some(&clean));
    updates.frame_done(Some(&failed));
    assert_eq!(serving(&slot), Some(2));
    let record = updates.record();
    assert_eq!(record.current, Some(2));
    assert!(record.failed.contains(&3));
    assert!(record
        .history
        .iter()
        .any(|e| e.serial == 3 && e.what.contains("not finite")));

    // v4 sees too few frames (a camera gone dark) before its deadline: rolled back.
    updates.receive(&archive(dir.path(), 4)[..]).unwrap();
    updates.activate(4).unwrap();
    updates.frame_done(Some(&clean));
    std::thread::sleep(Duration::from_millis(900));
    updates.frame_done(None);
    assert_eq!(serving(&slot), Some(2));
    assert!(updates.record().failed.contains(&4));

    // A restart with a trial recorded but never finished serves the previous bundle.
    updates.receive(&archive(dir.path(), 5)[..]).unwrap();
    updates.activate(5).unwrap();
    drop(updates);
    let slot = ModelSlot::default();
    let (updates, recovery) = open(dir.path(), &slot, policy);
    assert_eq!(recovery.abandoned_trial, Some(5));
    assert_eq!(serving(&slot), Some(2));
    assert_eq!(updates.record().current, Some(2));
}
