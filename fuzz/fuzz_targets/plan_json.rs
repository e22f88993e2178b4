//! `opsdeploy plan --plan-json FILE`'s reader (`parse_plan_json`): BOM and
//! UTF-16 decoding, trailing data, the nesting check and the format check.
//! Beyond "no panic": a plan it accepts must be one the SDK reads, and every
//! raw value a policy may parse must be within serde_json's depth limit, which
//! is what the nesting check promises.
#![no_main]

use libfuzzer_sys::fuzz_target;
use opsdeploy::adapters::terraform::parse_plan_json;
use policy_sdk::terraform::Plan;
use serde_json::value::RawValue;

fn parses(raw: Option<&RawValue>) {
    if let Some(raw) = raw {
        serde_json::from_str::<serde_json::Value>(raw.get())
            .expect("an accepted plan's values parse within serde_json's depth limit");
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(raw) = parse_plan_json("fuzz.json", data.to_vec()) else {
        return;
    };
    let plan: Plan = serde_json::from_str(raw.text()).expect("an accepted plan is an SDK Plan");
    parses(plan.planned_values);
    parses(plan.prior_state);
    parses(plan.checks);
    for rc in plan.resource_changes.iter().chain(&plan.resource_drift) {
        parses(rc.change.before);
        parses(rc.change.after);
        parses(rc.change.after_unknown);
    }
});
