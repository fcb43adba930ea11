//! The README's example, compiled and run with the inputs it takes as given; the workspace's `tests/readme.rs` checks
//! that the README shows it verbatim (the body of `readme_example`, kept at column 0).

use chrono::Utc;
use vppkit_core::{
    AdamId, Asset, AssetCounts, AssetKey, Holder, LocationId, Platform, PricingParam, ProductType,
    SerialNumber,
};
use vppkit_ledger::{Cause, Ledger};

#[rustfmt::skip]
fn readme_example() -> Result<(), Box<dyn std::error::Error>> {
// What the README's lines take as given (column 0: the README's text follows).
let location = LocationId::new("springfield-high")?;
let app = AssetKey::new(AdamId::new("409203825")?, PricingParam::Stdq);
let holder = Holder::Device(SerialNumber::new("C02000000000")?);
let counts = AssetCounts::new(5, 0, 5, 0);
let asset = Asset::new(app.clone(), ProductType::App, true, true, vec![Platform::Ios], counts);
let assets_from_apple = vec![asset];
let cause = Cause::policy("lab");
let now = Utc::now();
// One location's ledger. Every call returns the journal entries to persist.
let mut ledger = Ledger::new(location);
let mut journal = ledger.reconcile_assets(&assets_from_apple, cause.clone(), now);
// Reserve one licence before asking Apple (a Rejection when none is free).
journal.push(ledger.reserve(&app, &holder, cause.clone(), now)?);
// ... Apple answers with an event; once it completes:
journal.push(ledger.confirm(&app, &holder, cause, now)?); // or roll_back if it failed
let view = ledger.asset_view(&app).expect("known asset");
println!("{} owned, {} retired", view.owned, view.retired);
// Later: Ledger::replay(location, &journal) rebuilds the same state.
assert_eq!(view.owned, 5);
let again = Ledger::replay(ledger.location().clone(), &journal)?;
assert_eq!(again.asset_view(&app), ledger.asset_view(&app));
Ok(())
}

#[test]
fn the_readme_example_runs() {
    readme_example().unwrap();
}
