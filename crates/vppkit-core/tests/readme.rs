//! The README's example, compiled and run; the test below checks that the README shows it
//! verbatim (the body of `readme_example`, kept at column 0).

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

#[test]
fn the_readme_shows_this_example() {
    let readme = include_str!("../README.md");
    let block = readme
        .split("```rust\n")
        .nth(1)
        .and_then(|b| b.split("```").next());
    let this = include_str!("readme.rs");
    assert!(
        block.is_some_and(|b| this.contains(b)),
        "README and tests/readme.rs differ"
    );
}
