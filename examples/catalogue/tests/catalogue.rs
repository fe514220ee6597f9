//! The catalogue's checks: the committed generated files are what `events.json` generates
//! (drift), the Rust validator and types accept the valid samples and reject the mutated ones,
//! and the generated TypeScript compiles, its types accept and reject the same samples and its
//! validator reports the same problems as the Rust one (run with node).
//!
//! The TypeScript half needs `tsc` (`examples/react-app/node_modules`, `npm/node_modules` or
//! `TIDINGS_TSC`) and node; without them it is skipped with a message, unless
//! `CATALOGUE_REQUIRE_TS=1` (scripts/test-examples-e2e.sh sets it).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing, missing_docs)]

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{Value, json};
use tidings_example_catalogue::samples::{Case, cases};
use tidings_example_catalogue::{Direction, catalogue, decode_data, generate, validate};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

#[test]
fn the_generated_files_are_up_to_date() {
    let c = catalogue().unwrap();
    for (path, text) in [(generate::RUST_PATH, generate::rust(c)), (generate::TS_PATH, generate::typescript(c))] {
        let committed = std::fs::read_to_string(root().join(path)).unwrap_or_default();
        assert!(
            committed == text,
            "{path} differs from what examples/catalogue/events.json generates (drift): run `{}` and commit the result",
            generate::REGENERATE
        );
    }
}

fn rust_problems(case: &Case) -> Value {
    match validate(case.direction, &case.event, &case.payload) {
        Ok(()) => json!([]),
        Err(p) => serde_json::to_value(p).unwrap(),
    }
}

#[test]
fn the_rust_validator_and_types_take_the_valid_samples_and_refuse_the_mutated_ones() {
    let all = cases(catalogue().unwrap());
    assert!(all.len() > 100, "{} samples", all.len());
    for case in &all {
        let problems = validate(case.direction, &case.event, &case.payload);
        assert_eq!(problems.is_ok(), case.valid, "{} {}: {problems:?}", case.event, case.what);
        if let Err(p) = &problems {
            assert!(!p.is_empty());
        }
        let Some(data) = &case.data else { continue };
        let typed = decode_data(case.direction, &case.event, data).expect("every catalogue event has a type");
        if case.valid {
            typed.unwrap_or_else(|e| panic!("{} {}: the Rust type refuses a valid sample: {e}", case.event, case.what));
        } else if case.serde_rejects {
            assert!(typed.is_err(), "{} {}: the Rust type accepts an invalid sample", case.event, case.what);
        }
    }
}

#[test]
fn unknown_events_and_extra_fields() {
    let p = validate(Direction::ServerToClient, "no.such", &json!({})).unwrap_err();
    assert_eq!(p[0].message, "\"no.such\" is not in the catalogue");
    let data = json!({ "taskId": "t", "tenantId": "acme", "task": { "id": "t", "priority": 2 }, "more": 1 });
    tidings_example_catalogue::validate_data(Direction::ServerToClient, "task.created", &data).unwrap();
    let t: tidings_example_catalogue::TaskEventData = serde_json::from_value(data).unwrap();
    assert_eq!(t.task.rest["priority"], 2, "a Task keeps the fields the catalogue does not name");
    let p = tidings_example_catalogue::validate_data(
        Direction::ServerToClient,
        "task.created",
        &json!({ "taskId": 1, "task": { "title": null } }),
    )
    .unwrap_err();
    let text = tidings_example_catalogue::describe(&p);
    assert_eq!(
        text,
        "$.taskId: expected string, got number; $.tenantId: missing; $.task.id: missing; $.task.title: expected string, got null"
    );
}

fn tsc() -> Option<PathBuf> {
    if let Ok(t) = std::env::var("TIDINGS_TSC") {
        return Some(PathBuf::from(t));
    }
    ["examples/react-app/node_modules/.bin/tsc", "npm/node_modules/.bin/tsc"]
        .iter()
        .map(|p| root().join(p))
        .find(|p| p.exists())
}

fn run(cmd: &mut Command, dir: &Path) -> String {
    let out = cmd.current_dir(dir).output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{cmd:?} failed:\n{text}");
    text
}

#[test]
fn the_typescript_compiles_and_agrees_with_the_rust_validator_and_types() {
    let required = std::env::var("CATALOGUE_REQUIRE_TS").is_ok_and(|v| v == "1");
    let node_ok = Command::new("node").arg("--version").output().is_ok_and(|o| o.status.success());
    let Some(tsc) = tsc().filter(|_| node_ok) else {
        assert!(!required, "CATALOGUE_REQUIRE_TS=1 but no tsc/node: run npm ci in examples/react-app");
        eprintln!("SKIPPED: no tsc (examples/react-app/node_modules, npm/node_modules, TIDINGS_TSC) or no node");
        return;
    };
    let c = catalogue().unwrap();
    let dir = std::env::temp_dir().join(format!("tidings-catalogue-test-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("catalogue.generated.ts"), generate::typescript(c)).unwrap();
    std::fs::write(dir.join("package.json"), r#"{"type": "module"}"#).unwrap();

    // The types: every valid sample type-checks, every mutation the types can see does not.
    let all = cases(c);
    let mut check =
        String::from("import type { ServerToClientPayload, ClientToServerPayload } from \"./catalogue.generated\";\n");
    let mut typed = 0;
    for (i, case) in all.iter().enumerate() {
        if case.extras || !(case.valid || case.ts_types_reject) {
            continue;
        }
        let map = match case.direction {
            Direction::ServerToClient => "ServerToClientPayload",
            Direction::ClientToServer => "ClientToServerPayload",
        };
        if !case.valid {
            check.push_str(&format!("// @ts-expect-error {}\n", case.what.replace('\n', " ")));
        }
        check.push_str(&format!("export const s{i}: {map}<{:?}> = {};\n", case.event, case.payload));
        typed += 1;
    }
    assert!(typed > 50);
    std::fs::write(dir.join("check.ts"), check).unwrap();
    run(
        Command::new(&tsc).args([
            "--strict",
            "--noUnusedLocals",
            "--noUnusedParameters",
            "--noUncheckedIndexedAccess",
            "--target",
            "ES2022",
            "--module",
            "ESNext",
            "--moduleResolution",
            "bundler",
            "--types",
            "",
            "--outDir",
            "out",
            "catalogue.generated.ts",
            "check.ts",
        ]),
        &dir,
    );

    // The validator: the same problems as the Rust one, case by case.
    let input: Vec<Value> = all
        .iter()
        .map(|c| {
            let d = match c.direction {
                Direction::ServerToClient => "ServerToClient",
                Direction::ClientToServer => "ClientToServer",
            };
            json!({ "direction": d, "event": c.event, "payload": c.payload })
        })
        .collect();
    std::fs::write(dir.join("cases.json"), serde_json::to_string(&input).unwrap()).unwrap();
    std::fs::write(
        dir.join("run.mjs"),
        r#"import { readFileSync } from "node:fs";
import * as cat from "./out/catalogue.generated.js";
const cases = JSON.parse(readFileSync("cases.json", "utf8"));
process.stdout.write(JSON.stringify(cases.map((c) => cat[`validate${c.direction}`](c.event, c.payload))));
"#,
    )
    .unwrap();
    let out = run(Command::new("node").arg("run.mjs"), &dir);
    let ts: Vec<Value> = serde_json::from_str(&out).unwrap_or_else(|e| panic!("node said {out}: {e}"));
    assert_eq!(ts.len(), all.len());
    for (case, ts) in all.iter().zip(&ts) {
        assert_eq!(ts, &rust_problems(case), "{} {}: TypeScript vs Rust problems", case.event, case.what);
    }
    let _ = std::fs::remove_dir_all(&dir);
}
