//! The README's example, compiled and run; the test below checks that the README shows it
//! verbatim (the body of `readme_example`, kept at column 0).

#[rustfmt::skip]
fn readme_example() -> Result<(), Box<dyn std::error::Error>> {
use chrono::Utc;
use vppkit_rules::{Directory, LicenceState, PlanContext, Planner, PolicySet};

let directory = Directory::from_json(r#"{
  "devices": [{"serialNumber": "DMPCART00001", "platform": "iOS", "osVersion": "17.5"}],
  "groups": [{"id": "cart", "devices": ["DMPCART00001"]}]
}"#)?;
let policies = PolicySet::from_json(r#"{"policies": [
  {"id": "keynote", "adamId": "409183694", "target": {"group": "cart"},
   "intent": "required", "licence": "device"}
]}"#)?;
let licences = LicenceState::new(); // add the assets Apple says each location owns
let plan = Planner::new().plan(&directory, &policies, &licences, &PlanContext::new(Utc::now()))?;
for line in plan.explain() {
    println!("{line}");
}
Ok(())
}

#[test]
fn the_readme_example_runs() {
    readme_example().unwrap();
}

#[test]
fn the_readme_shows_this_example() {
    let readme = include_str!("../../README.md");
    let block = readme
        .split("```rust\n")
        .nth(1)
        .and_then(|b| b.split("```").next());
    let this = include_str!("readme.rs");
    assert!(
        block.is_some_and(|b| this.contains(b)),
        "README and tests/it/readme.rs differ"
    );
}
