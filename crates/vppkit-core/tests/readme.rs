//! The README's example, compiled and run; the workspace's `tests/readme.rs` checks
//! that the README shows it verbatim (the body of `readme_example`, kept at column 0).

#[rustfmt::skip]
fn readme_example() -> Result<(), Box<dyn std::error::Error>> {
use vppkit_core::{AdamId, AssetKey, ContentToken, Holder, PricingParam, SerialNumber};

let app = AssetKey::new(AdamId::new("409203825")?, PricingParam::Stdq);
let holder = Holder::Device(SerialNumber::new("C02000000000")?);
assert!(holder.is_device());
assert_eq!(app.pricing_param, PricingParam::Stdq);

let file = ContentToken::encode_file("opaque", "2031-03-01T10:00:00-0800", "Example School");
let token = ContentToken::parse(&file)?;
assert_eq!(token.org_name(), "Example School");
assert!(!format!("{token:?}").contains(&file));
Ok(())
}

#[test]
fn the_readme_example_runs() {
    readme_example().unwrap();
}
