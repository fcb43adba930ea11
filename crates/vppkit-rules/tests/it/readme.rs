//! The README's example, compiled and run; the workspace's `tests/readme.rs` checks
//! that the README shows it verbatim (the body of `readme_example`, kept at column 0).

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
