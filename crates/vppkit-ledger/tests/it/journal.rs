//! The journal's persisted form.

use serde_json::json;
use vppkit_ledger::{Cause, EventKind, JournalEntry, PendingEvent};

use crate::support::*;

#[test]
fn entries_serialize_with_stable_names() {
    let (mut l, mut j) = ledger_with(&[app(1, 2)]);
    j.push(l.reserve(&key(1), &device(1), policy(), now()).unwrap());
    j.extend(
        l.record_event(
            &PendingEvent::new(event(1), EventKind::Associate),
            &[(key(1), device(1))],
            policy(),
            now(),
        )
        .unwrap(),
    );
    let v = serde_json::to_value(&j[2]).unwrap();
    assert_eq!(v["seq"], 3);
    assert_eq!(v["location"], "loc-1");
    assert_eq!(
        v["cause"],
        json!({"kind": "policy", "policy_id": "policy-1"})
    );
    assert_eq!(v["change"]["type"], "holding");
    assert_eq!(v["change"]["reason"], "event_recorded");
    assert_eq!(v["change"]["from"], "reserved");
    assert_eq!(
        v["change"]["event"],
        json!({"eventId": "ev-1", "kind": "ASSOCIATE"})
    );
    assert_eq!(v["change"]["holder"], json!({"device": "SERIAL0001"}));
    assert_eq!(v["before"]["reserved"], 1);
    assert_eq!(v["at"], "2030-01-02T03:04:05Z");
    let back: JournalEntry = serde_json::from_value(v).unwrap();
    assert_eq!(back, j[2]);
    assert_replays(&l, &j);
}

#[test]
fn empty_fields_are_left_out_and_read_back_in_either_form() {
    let (mut l, mut j) = ledger_with(&[app(1, 2)]);
    j.push(l.reserve(&key(1), &device(1), policy(), now()).unwrap());
    let entry = &j[1];
    let text = serde_json::to_string(entry).unwrap();
    // No holding before, no event yet, no active, releasing or adopted holding.
    for absent in [
        "\"from\"",
        "\"event\"",
        "\"active\"",
        "\"releasing\"",
        "\"adopted\"",
    ] {
        assert!(!text.contains(absent), "{absent} in {text}");
    }
    let back: JournalEntry = serde_json::from_str(&text).unwrap();
    assert_eq!(&back, entry);
    // Entries written before the fields were left out still read back.
    let mut v = serde_json::to_value(entry).unwrap();
    v["change"]["from"] = serde_json::Value::Null;
    v["change"]["event"] = serde_json::Value::Null;
    for tally in ["before", "after"] {
        for field in ["reserved", "active", "releasing", "adopted"] {
            if v[tally].get(field).is_none() {
                v[tally][field] = json!(0);
            }
        }
    }
    let old: JournalEntry = serde_json::from_value(v).unwrap();
    assert_eq!(&old, entry);
    assert_replays(&l, &j);
}

#[test]
fn columns_for_the_store() {
    let (mut l, j) = ledger_with(&[app(1, 2)]);
    assert_eq!(j[0].asset(), Some(&key(1)));
    assert_eq!(j[0].holder(), None);
    let u = l
        .upsert_user(
            vpp_user(3, vppkit_core::VppUserStatus::Registered),
            Cause::operator("ana", Some("onboarding".to_owned())),
            now(),
        )
        .unwrap();
    assert_eq!(u.asset(), None);
    assert_eq!(u.holder(), Some(user(3)));
    assert_eq!(u.cause.kind(), "operator");
    assert_eq!(u.cause.reference(), "ana");
    assert_eq!(Cause::event(event(4)).to_string(), "event:ev-4");
    assert_eq!(
        Cause::notification(nid(1), Some(event(2))).reference(),
        "n-1"
    );
    assert_eq!(Cause::sync(None).reference(), "");
    // Nothing changed: no entry.
    assert!(l
        .upsert_user(
            vpp_user(3, vppkit_core::VppUserStatus::Registered),
            Cause::sync(None),
            now()
        )
        .is_none());
}
