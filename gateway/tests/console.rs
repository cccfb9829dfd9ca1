//! The web console in a real browser: `tongban demo --console` serves it and
//! tests/browser/console.mjs drives Chromium through it (a steward signs in with the
//! one-time link and decides pairs with the mouse and the keyboard, ops watches the
//! charts and sees no personal data, the wrong identities are refused); the steward's
//! decisions must then reach the platform's feed.
//!
//! Needs node, Chromium and tests/browser/node_modules (scripts/test installs them and
//! sets TONGBAN_BROWSER_TESTS=require); without them the test says it is skipped.

use std::collections::{BTreeMap, BTreeSet};
use std::io::BufRead;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;

const TONGBAN: &str = env!("CARGO_BIN_EXE_tongban");

/// The demo builds its city, pushes it and resolves it before it serves the console.
const DEMO_READY: Duration = Duration::from_secs(180);
/// console.mjs stops itself after 60 s; this is for a node that does not.
const BROWSER_RUN: Duration = Duration::from_secs(120);
/// What console.mjs screenshots, in SCREENSHOT_DIR.
const SCREENSHOTS: [&str; 6] = [
    "review.png",
    "review-decided.png",
    "entity.png",
    "operations.png",
    "ops-refused.png",
    "quality.png",
];
/// Of each kind, enough to catch a view that shows people without a slow check.
const PERSONAL_SAMPLE: usize = 300;

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the workspace root")
        .to_owned()
}

/// Chromium's path, or what is missing to run the browser.
fn browser_prerequisites(workspace: &Path) -> Result<PathBuf, String> {
    let mut missing = Vec::new();
    let node = Command::new("node")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    if !node.is_ok_and(|s| s.success()) {
        missing.push("node (apt-get install nodejs npm)".to_owned());
    }
    let chromium = std::env::var_os("CHROMIUM").map_or_else(|| PathBuf::from("/usr/bin/chromium"), PathBuf::from);
    if !chromium.is_file() {
        missing.push(format!(
            "Chromium at {} (apt-get install chromium, or set CHROMIUM)",
            chromium.display()
        ));
    }
    if !workspace
        .join("tests/browser/node_modules/playwright-core/package.json")
        .is_file()
    {
        missing.push("playwright-core (npm ci --prefix tests/browser)".to_owned());
    }
    if missing.is_empty() {
        Ok(chromium)
    } else {
        Err(missing.join(", "))
    }
}

/// `tongban demo --console`, in a process group of its own that is killed when the test
/// ends, however it ends.
struct Demo {
    child: Child,
}

impl Drop for Demo {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.child.id())])
            .stderr(Stdio::null())
            .status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What the demo printed that the browser needs.
struct Served {
    endpoint: String,
    console: String,
    sign_in: String,
}

/// Fails the test with what the demo printed.
fn failed(why: &str, printed: &[String], stderr_path: &Path) -> ! {
    let log = std::fs::read_to_string(stderr_path).unwrap_or_default();
    panic!(
        "tongban demo --console {why}; it printed:\n{}\nstderr:\n{log}",
        printed.join("\n")
    );
}

/// Starts the demo with its folder in `keep` and waits until it serves the console.
fn start_demo(dir: &Path, keep: &Path) -> (Demo, Served) {
    let stderr_path = dir.join("demo.stderr");
    let stderr = std::fs::File::create(&stderr_path).expect("the demo's log file");
    let mut child = Command::new(TONGBAN)
        .args([
            "demo",
            "--console",
            "--console-listen",
            "127.0.0.1:0",
            // The demo's default city: a dozen pairs wait for a steward (1,500 people
            // leave only 3, and a steward's first merge may settle another).
            "--people",
            "3000",
            "--keep",
        ])
        .arg(keep)
        .current_dir(dir)
        .env("NO_COLOR", "1")
        .process_group(0)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(stderr)
        .spawn()
        .expect("start tongban demo --console");
    let stdout = child.stdout.take().expect("the demo's stdout");
    let demo = Demo { child };
    // Read on a thread of its own so that waiting has a deadline; it drains the pipe
    // until the demo is killed, so that the demo never blocks on a full pipe.
    let (lines_tx, lines_rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            let _ = lines_tx.send(line);
        }
    });
    let deadline = Instant::now() + DEMO_READY;
    let mut printed = Vec::new();
    loop {
        match lines_rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            Ok(line) => {
                let ready = line.contains("Hub and console are running");
                printed.push(line);
                if ready {
                    break;
                }
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {
                failed(&format!("was not serving after {DEMO_READY:?}"), &printed, &stderr_path)
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                failed("ended before serving the console", &printed, &stderr_path)
            }
        }
    }
    let endpoint = printed.iter().find_map(|l| {
        l.strip_prefix("Tongban demo: hub on ")
            .and_then(|rest| rest.split_whitespace().next())
            .map(str::to_owned)
    });
    let console = printed.iter().find_map(|l| {
        let url = l.strip_prefix("Console: ")?.trim();
        // The origin: scheme, host and port without the page's path.
        let after_scheme = url.find("://")? + 3;
        let end = url[after_scheme..].find('/').map_or(url.len(), |i| after_scheme + i);
        Some(url[..end].to_owned())
    });
    // The steward's link (the ops link follows it).
    let sign_in = printed
        .iter()
        .filter(|l| l.contains("Sign in as steward:"))
        .find_map(|l| {
            l.split_whitespace()
                .find(|word| word.contains("/login?token="))
                .map(str::to_owned)
        });
    match (endpoint, console, sign_in) {
        (Some(endpoint), Some(console), Some(sign_in)) => (
            demo,
            Served {
                endpoint,
                console,
                sign_in,
            },
        ),
        _ => failed(
            "did not print its hub, console and sign-in link",
            &printed,
            &stderr_path,
        ),
    }
}

/// The people of the demo's city as its feed holds them (`unified.jsonl`, pulled by the
/// demo): every name as typed and every identifier of every person. What the operations
/// view must never show. Read from the unified records, so that this test needs no
/// department's field names.
fn personal_values(keep: &Path) -> Vec<String> {
    let path = keep.join("unified.jsonl");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let (mut names, mut numbers) = (BTreeSet::new(), BTreeSet::new());
    for line in text.lines() {
        let record: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        if record["kind"] != "person" {
            continue;
        }
        let strings = |value: &Value| {
            value
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|v| v.as_str())
                .map(str::to_owned)
                .collect::<Vec<_>>()
        };
        names.extend(strings(&record["variants"]["name"]));
        for identifier in record["identifiers"].as_array().into_iter().flatten() {
            if let Some(value) = identifier["value"].as_str() {
                numbers.insert(value.to_owned());
            }
        }
    }
    assert!(
        !names.is_empty() && !numbers.is_empty(),
        "names and identifiers of persons in {}",
        path.display()
    );
    // Spread over the alphabet rather than the first few hundred in order.
    let sample = |set: BTreeSet<String>| {
        let step = set.len().div_ceil(PERSONAL_SAMPLE).max(1);
        set.into_iter().step_by(step).collect::<Vec<_>>()
    };
    let mut values = sample(names);
    values.extend(sample(numbers));
    values
}

/// Runs console.mjs; its output is printed either way, for whoever reads the test's log.
fn run_browser(workspace: &Path, chromium: &Path, env: &[(&str, &Path)], served: &Served, dir: &Path) {
    let stdout_path = dir.join("browser.stdout");
    let stderr_path = dir.join("browser.stderr");
    let mut node = Command::new("node")
        .arg("tests/browser/console.mjs")
        .current_dir(workspace)
        .env("CONSOLE_URL", &served.console)
        .env("LOGIN_URL", &served.sign_in)
        .env("CHROMIUM", chromium)
        .envs(env.iter().map(|(name, path)| (*name, *path)))
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&stdout_path).expect("node's stdout file"))
        .stderr(std::fs::File::create(&stderr_path).expect("node's stderr file"))
        .spawn()
        .expect("run node");
    let deadline = Instant::now() + BROWSER_RUN;
    let status = loop {
        match node.try_wait().expect("wait for node") {
            Some(status) => break Some(status),
            None if Instant::now() > deadline => {
                let _ = node.kill();
                let _ = node.wait();
                break None;
            }
            None => std::thread::sleep(Duration::from_millis(200)),
        }
    };
    let stdout = std::fs::read_to_string(&stdout_path).unwrap_or_default();
    let stderr = std::fs::read_to_string(&stderr_path).unwrap_or_default();
    println!("console.mjs:\n{stdout}{stderr}");
    assert!(
        status.is_some_and(|s| s.success()),
        "tests/browser/console.mjs failed ({}):\n{stdout}\n{stderr}",
        status.map_or_else(|| format!("still running after {BROWSER_RUN:?}"), |s| s.to_string())
    );
}

/// The feed's final state: the last line of every unified ID.
struct Feed {
    last: BTreeMap<String, Value>,
}

impl Feed {
    fn read(path: &Path) -> Feed {
        let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let mut last = BTreeMap::new();
        for line in text.lines() {
            let change: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("feed line {line}: {e}"));
            let id = change["unified_id"]
                .as_str()
                .expect("a unified_id on every line")
                .to_owned();
            last.insert(id, change);
        }
        Feed { last }
    }

    /// The last line of `id`, for messages.
    fn line(&self, id: &str) -> String {
        self.last
            .get(id)
            .map_or_else(|| format!("no line of {id}"), Value::to_string)
    }

    fn merged_into(&self, id: &str) -> Option<&str> {
        self.last.get(id)?.get("merged_into")?.as_str()
    }

    /// The entity `id` is now: itself, or the survivor its merges lead to.
    fn live(&self, id: &str) -> String {
        let mut id = id.to_owned();
        for _ in 0..100 {
            match self.merged_into(&id) {
                Some(survivor) => id = survivor.to_owned(),
                None => return id,
            }
        }
        panic!("the feed's merges from {id} go round in a circle");
    }

    /// The entities the last line of `id` says a steward set apart from it, as they are now.
    fn distinct_from(&self, id: &str) -> Vec<String> {
        self.last
            .get(id)
            .and_then(|change| change.get("distinct_from"))
            .and_then(Value::as_array)
            .map(|ids| {
                ids.iter()
                    .filter_map(Value::as_str)
                    .map(|other| self.live(other))
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// Every decision the browser made is in the feed the platform pulls.
fn assert_decisions_in_feed(feed: &Feed, decisions: &[Value]) {
    for decision in decisions {
        let text = |field: &str| decision[field].as_str().unwrap_or_default().to_owned();
        let (entity, candidate) = (text("entity"), text("candidate"));
        let (entity_now, candidate_now) = (feed.live(&entity), feed.live(&candidate));
        for id in [&entity, &candidate] {
            assert!(feed.last.contains_key(id), "{id} of {decision} is in the feed");
        }
        match decision["verdict"].as_str() {
            Some("same") => {
                assert_eq!(
                    entity_now, candidate_now,
                    "decided the same, yet the feed keeps {entity} and {candidate} apart: {decision}"
                );
                assert!(
                    feed.merged_into(&entity).is_some() || feed.merged_into(&candidate).is_some(),
                    "the feed shows the merge of {entity} and {candidate}: {decision}"
                );
                if let Some(survivor) = decision["survivor"].as_str() {
                    assert_eq!(
                        feed.live(survivor),
                        entity_now,
                        "the survivor the console named: {decision}"
                    );
                }
            }
            Some("different") => {
                assert_ne!(
                    entity_now, candidate_now,
                    "decided different, yet the feed merged {entity} and {candidate}: {decision}"
                );
                assert!(
                    feed.distinct_from(&entity_now).contains(&candidate_now),
                    "{entity_now} lists {candidate_now} in distinct_from: {decision}\n{}",
                    feed.line(&entity_now)
                );
                assert!(
                    feed.distinct_from(&candidate_now).contains(&entity_now),
                    "{candidate_now} lists {entity_now} in distinct_from: {decision}\n{}",
                    feed.line(&candidate_now)
                );
            }
            _ => panic!("a decision without a verdict: {decision}"),
        }
    }
}

#[test]
fn console_in_a_real_browser() {
    let workspace = workspace();
    let chromium = match browser_prerequisites(&workspace) {
        Ok(chromium) => chromium,
        Err(missing) if std::env::var("TONGBAN_BROWSER_TESTS").as_deref() == Ok("require") => panic!(
            "TONGBAN_BROWSER_TESTS=require, but this test needs {missing}; \
             install them (Debian: apt-get install chromium; npm ci --prefix tests/browser) or run scripts/test"
        ),
        Err(missing) => {
            eprintln!(
                "skipped: console_in_a_real_browser needs {missing}; scripts/test installs them \
                 (Debian: apt-get install chromium; npm ci --prefix tests/browser)"
            );
            return;
        }
    };

    let dir = tempfile::tempdir().expect("tempdir");
    let keep = dir.path().join("demo");
    let (_demo, served) = start_demo(dir.path(), &keep);

    let personal = dir.path().join("personal-values.txt");
    std::fs::write(&personal, personal_values(&keep).join("\n") + "\n").expect("personal values file");
    // The screenshots stay here after the test, for people to look at.
    let screenshots = workspace.join("target/console-screenshots");
    std::fs::create_dir_all(&screenshots).expect("the screenshots folder");
    for name in SCREENSHOTS {
        let _ = std::fs::remove_file(screenshots.join(name));
    }
    let out = dir.path().join("browser.json");
    let pki = keep.join("pki");
    run_browser(
        &workspace,
        &chromium,
        &[
            ("PKI_DIR", pki.as_path()),
            ("SCREENSHOT_DIR", screenshots.as_path()),
            ("OUT", out.as_path()),
            ("PERSONAL_VALUES", personal.as_path()),
        ],
        &served,
        dir.path(),
    );

    let report: Value = serde_json::from_str(&std::fs::read_to_string(&out).expect("console.mjs's report"))
        .expect("console.mjs's report is JSON");
    let decisions = report["decisions"].as_array().expect("decisions");
    let verdicts: Vec<&str> = decisions.iter().filter_map(|d| d["verdict"].as_str()).collect();
    assert_eq!(verdicts, ["same", "different", "same"], "{report}");

    let feed_path = dir.path().join("feed.jsonl");
    let pulled = Command::new(TONGBAN)
        .args(["pull", "--endpoint", &served.endpoint, "--identity"])
        .arg(pki.join("platform"))
        .arg("--out")
        .arg(&feed_path)
        .arg("--cursor")
        .arg(dir.path().join("feed.cursor"))
        .current_dir(dir.path())
        .output()
        .expect("tongban pull");
    assert!(
        pulled.status.success(),
        "tongban pull: {}{}",
        String::from_utf8_lossy(&pulled.stdout),
        String::from_utf8_lossy(&pulled.stderr)
    );
    let feed = Feed::read(&feed_path);
    assert_decisions_in_feed(&feed, decisions);
    // The entity page the steward saw is the merge's survivor as the feed has it.
    let first = &decisions[0];
    assert_eq!(
        report["entity"].as_str(),
        Some(feed.live(first["candidate"].as_str().unwrap_or_default()).as_str()),
        "{report}"
    );

    for name in SCREENSHOTS {
        let path = screenshots.join(name);
        let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("screenshot {}: {e}", path.display()));
        assert!(
            bytes.len() > 1000 && bytes.starts_with(b"\x89PNG\r\n\x1a\n"),
            "{} is a PNG image",
            path.display()
        );
    }
}
