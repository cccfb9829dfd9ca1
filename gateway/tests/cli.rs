//! The `tongban` binary as a department's engineer uses it: `tongban dev` in one
//! terminal, `tongban push` in another; `tongban certs` and `tongban serve`; the demo.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

mod common;

use common::{free_port, Database, Running, TONGBAN};

fn wait_for_port(port: u16, child: &mut Running) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        if let Ok(Some(status)) = child.0.try_wait() {
            panic!("tongban exited early with {status}");
        }
        assert!(Instant::now() < deadline, "tongban did not listen on {port}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn tongban(args: &[&str], dir: &Path) -> Output {
    Command::new(TONGBAN)
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run tongban")
}

/// `tongban dev` in `dir` on a free port, listening: the process (killed when dropped)
/// and its endpoint.
fn start_dev(dir: &Path, stdout: Stdio) -> (Running, String) {
    start_dev_with(dir, &[], stdout)
}

/// `tongban dev` with more arguments (`--data-dir`, say), as [`start_dev`].
fn start_dev_with(dir: &Path, args: &[&str], stdout: Stdio) -> (Running, String) {
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let mut dev = Running(
        Command::new(TONGBAN)
            .args(["dev", "--listen", &listen])
            .args(args)
            .current_dir(dir)
            .stdout(stdout)
            .stderr(Stdio::null())
            .spawn()
            .expect("start tongban dev"),
    );
    wait_for_port(port, &mut dev);
    (dev, format!("https://{listen}"))
}

/// `tongban push` of `file` as the identity folder `identity`, without a progress bar.
fn push(dir: &Path, endpoint: &str, identity: &str, file: &str) -> Output {
    tongban(
        &[
            "push",
            "--endpoint",
            endpoint,
            "--identity",
            identity,
            "--file",
            file,
            "--quiet",
        ],
        dir,
    )
}

/// `tongban serve` with `config` written to `tongban.toml`, once it listens on `port`.
fn start_serve(dir: &Path, config: &str, port: u16, env: &[(&str, &str)]) -> Running {
    std::fs::write(dir.join("tongban.toml"), config).expect("config");
    let mut serve = Running(
        Command::new(TONGBAN)
            .args(["serve", "--config", "tongban.toml"])
            .envs(env.iter().copied())
            .current_dir(dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("serve"),
    );
    wait_for_port(port, &mut serve);
    serve
}

/// Pushes one valid market record as `identity` and expects it accepted.
fn assert_market_record_accepted(dir: &Path, endpoint: &str, identity: &str) {
    write_market_file(dir);
    let output = push(dir, endpoint, identity, "market.jsonl");
    assert!(
        output.status.success(),
        "{}{}",
        text(&output.stdout),
        text(&output.stderr)
    );
    assert!(text(&output.stdout).contains("1 accepted"), "{}", text(&output.stdout));
}

/// `market.jsonl` with one valid market record.
fn write_market_file(dir: &Path) {
    let line = serde_json::json!({
        "record_type": "market.entity", "source_id": "0123456789abcdef0123456789abcdef", "source_version": 1,
        "payload": {"ztid": "0123456789abcdef0123456789abcdef", "tyshxydm": "", "ztmc": "海阳市某某商贸有限公司",
                    "ztlx": "1100", "fddbr": "王伟", "clrq": "2004年1月8日", "zs": "海阳市", "djzt": "存续"}
    });
    std::fs::write(dir.join("market.jsonl"), format!("{line}\n")).expect("file");
}

/// `tongban args` in `dir`, which must succeed: what it printed.
fn tongban_succeeds(args: &[&str], dir: &Path) -> String {
    let output = tongban(args, dir);
    assert!(output.status.success(), "tongban {args:?}: {}", text(&output.stderr));
    text(&output.stdout)
}

/// A CA in `dir/pki` and a server certificate for localhost and 127.0.0.1.
fn make_ca_and_server_certificate(dir: &Path) {
    tongban_succeeds(&["certs", "ca", "--pki", "pki"], dir);
    tongban_succeeds(
        &[
            "certs",
            "server",
            "--pki",
            "pki",
            "--name",
            "localhost",
            "--name",
            "127.0.0.1",
        ],
        dir,
    );
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A tax export with two good records, one the schema rejects, a line that is not an
/// envelope at all, and one that is not UTF-8.
fn write_tax_file(path: &Path) {
    let good = |id: &str, date: &str| {
        serde_json::json!({
            "record_type": "tax.taxpayer", "source_id": id, "source_version": 1700000000000i64,
            "payload": {"djxh": id, "nsrsbh": "370687198001010016", "nsrmc": "王 伟", "nsrlx": "3",
                        "zjlx_dm": "201", "zcdz": "海阳市方圆街道", "djrq": date, "nsrzt_dm": "03",
                        "swjg_dm": "13706870000"}
        })
        .to_string()
    };
    let mut file = std::fs::File::create(path).expect("create");
    writeln!(file, "{}", good("50000000000000000001", "20190516")).expect("write");
    writeln!(file, "{}", good("50000000000000000002", "2019-05-16")).expect("write");
    writeln!(file, "this line is not JSON").expect("write");
    writeln!(file, "{}", good("50000000000000000003", "20200101")).expect("write");
    // A line exported in GBK (王伟) instead of UTF-8.
    let gbk = good("50000000000000000004", "20200101").replace("王 伟", "@@");
    let (before, after) = gbk.split_once("@@").expect("marker");
    file.write_all(before.as_bytes()).expect("write");
    file.write_all(&[0xCD, 0xF5, 0xCE, 0xB0]).expect("write");
    writeln!(file, "{after}").expect("write");
}

#[test]
fn dev_hub_and_push_connector() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (_dev, endpoint) = start_dev(dir.path(), Stdio::piped());
    for identity in [
        "tax",
        "hrss",
        "market",
        "realestate",
        "housingfund",
        "construction",
        "civil",
        "platform",
        "steward",
        "ops",
    ] {
        let folder = dir.path().join("tongban-data/pki").join(identity);
        assert!(
            folder.join("cert.pem").exists() && folder.join("key.pem").exists(),
            "{identity} certificate"
        );
    }
    assert!(dir.path().join("tongban-data/pki/ca.pem").exists());

    let file = dir.path().join("tax.jsonl");
    write_tax_file(&file);
    let output = push(dir.path(), &endpoint, "tongban-data/pki/tax", "tax.jsonl");
    assert!(
        output.status.success(),
        "push failed: {}{}",
        text(&output.stdout),
        text(&output.stderr)
    );
    let stdout = text(&output.stdout);
    assert!(stdout.contains("2 accepted"), "{stdout}");
    assert!(stdout.contains("1 rejected"), "{stdout}");

    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("tax.jsonl.report.json")).expect("report"))
            .expect("json");
    assert_eq!(report["accepted"], 2);
    assert_eq!(report["rejected"], 1);
    assert_eq!(report["unreadable"], 2);
    let rejection = &report["rejections"][0];
    assert_eq!(rejection["line"], 2);
    assert_eq!(rejection["source_id"], "50000000000000000002");
    assert_eq!(rejection["errors"][0]["pointer"], "/djrq");
    // The message explains the rule, never repeats the value (it may be personal data).
    let message = rejection["errors"][0]["message"].as_str().unwrap_or("");
    assert!(message.contains("the value does not match"), "{message}");
    assert!(!message.contains("2019-05-16"), "{message}");
    assert_eq!(report["unreadable_lines"][0]["line"], 3);
    assert_eq!(report["unreadable_lines"][1]["line"], 5);
    assert!(report["unreadable_lines"][1]["error"]
        .as_str()
        .unwrap_or("")
        .contains("UTF-8"));

    // Pushed again, the same file changes nothing.
    let output = push(dir.path(), &endpoint, "tongban-data/pki/tax", "tax.jsonl");
    assert!(text(&output.stdout).contains("2 unchanged"), "{}", text(&output.stdout));

    // Another department's certificate cannot push tax records: the push stops, says why,
    // and exits non-zero.
    let output = push(dir.path(), &endpoint, "tongban-data/pki/civil", "tax.jsonl");
    assert!(!output.status.success());
    assert!(
        text(&output.stderr).contains("PermissionDenied"),
        "{}",
        text(&output.stderr)
    );

    // The platform pulls the feed: the two accepted records are one person (same number).
    let pull = |args: &[&str]| {
        let mut all = vec![
            "pull",
            "--endpoint",
            &endpoint,
            "--identity",
            "tongban-data/pki/platform",
        ];
        all.extend_from_slice(args);
        tongban(&all, dir.path())
    };
    let output = pull(&["--out", "unified.jsonl"]);
    assert!(
        output.status.success(),
        "{}{}",
        text(&output.stdout),
        text(&output.stderr)
    );
    let lines = std::fs::read_to_string(dir.path().join("unified.jsonl")).expect("feed file");
    let last: serde_json::Value = serde_json::from_str(lines.lines().last().expect("a change")).expect("json");
    assert_eq!(last["kind"], "person");
    assert_eq!(last["attributes"]["name"]["value"], "王伟", "typed 王 伟");
    let sources: Vec<&str> = last["sources"]
        .as_array()
        .expect("sources")
        .iter()
        .filter_map(|s| s["source_id"].as_str())
        .collect();
    assert_eq!(sources, ["50000000000000000001", "50000000000000000003"]);
    let unified_id = last["unified_id"].as_str().expect("unified id").to_owned();
    let cursor = std::fs::read_to_string(dir.path().join("unified.jsonl.cursor")).expect("cursor saved");
    assert_eq!(cursor.trim(), last["cursor"].as_str().expect("cursor"));
    let output = pull(&["--out", "unified.jsonl"]);
    assert!(
        text(&output.stdout).starts_with("0 changes written"),
        "{}",
        text(&output.stdout)
    );
    assert_eq!(
        std::fs::read_to_string(dir.path().join("unified.jsonl")).expect("feed"),
        lines
    );

    // Looked up by the 15-digit form of the number, as a department; beyond its sharing
    // rules it is refused.
    let get = |identity: &str, args: &[&str]| {
        let mut all = vec![
            "get",
            "--endpoint",
            &endpoint,
            "--identity",
            identity,
            "--purpose",
            "case 1",
        ];
        all.extend_from_slice(args);
        tongban(&all, dir.path())
    };
    let output = get("tongban-data/pki/hrss", &["370687800101001"]);
    assert!(
        output.status.success(),
        "{}{}",
        text(&output.stdout),
        text(&output.stderr)
    );
    let found: serde_json::Value = serde_json::from_slice(&output.stdout).expect("record json");
    assert_eq!(found["unified_id"].as_str(), Some(unified_id.as_str()));
    assert!(found["facts"].get("tax").is_none(), "hrss does not see tax's facts");
    let output = get("tongban-data/pki/hrss", &[&unified_id, "--part", "facts:tax"]);
    assert!(!output.status.success());
    assert!(
        text(&output.stderr).contains("PermissionDenied"),
        "{}",
        text(&output.stderr)
    );
}

/// Two taxpayers, then a marriage whose parties (passports only, birth dates in the
/// right month but not on the right day) each go to review against one of them.
fn write_review_files(dir: &Path) {
    let taxpayer = |id: &str, number: &str, name: &str| {
        serde_json::json!({
            "record_type": "tax.taxpayer", "source_id": id, "source_version": 1,
            "payload": {"djxh": id, "nsrsbh": number, "nsrmc": name, "nsrlx": "3", "zjlx_dm": "201",
                        "djrq": "20190516", "nsrzt_dm": "03", "swjg_dm": "13706870000"}
        })
    };
    let party = |name: &str, passport: &str, born: &str| serde_json::json!({"xm": name, "zjlx": "2", "zjhm": passport, "csrq": born, "gj": "中国", "hjdz": ""});
    let marriage = serde_json::json!({
        "record_type": "civil.marriage", "source_id": "J370687-2005-000100", "source_version": 1,
        "payload": {"zsbh": "J370687-2005-000100", "ywlx": "结婚", "djrq": "2005.10.01", "djjg": "海阳市民政局",
                    "nan": party("陈伟", "E12345678", "1979.03.20"), "nv": party("林芳", "E87654321", "1981.04.25")}
    });
    let tax = format!(
        "{}\n{}\n",
        taxpayer("30000000000000000001", "37062919790315001X", "陈伟"),
        taxpayer("30000000000000000002", "370687198104020022", "林芳")
    );
    std::fs::write(dir.join("tax.jsonl"), tax).expect("file");
    std::fs::write(dir.join("civil.jsonl"), format!("{marriage}\n")).expect("file");
}

#[test]
fn dev_hub_and_the_stewards_verbs() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (_dev, endpoint) = start_dev(dir.path(), Stdio::null());
    write_review_files(dir.path());
    for (identity, file) in [("tax", "tax.jsonl"), ("civil", "civil.jsonl")] {
        let output = push(dir.path(), &endpoint, &format!("tongban-data/pki/{identity}"), file);
        assert!(
            output.status.success(),
            "{}{}",
            text(&output.stdout),
            text(&output.stderr)
        );
    }
    // The steward's identity is the default.
    let run = |args: &[&str]| {
        let mut all = args.to_vec();
        all.extend_from_slice(&["--endpoint", &endpoint]);
        let output = tongban(&all, dir.path());
        (output.status.success(), text(&output.stdout), text(&output.stderr))
    };

    let (ok, out, err) = run(&["review"]);
    assert!(ok, "{out}{err}");
    assert!(out.contains("pair 1") && out.contains("pair 2"), "{out}");
    let birth = out
        .lines()
        .find(|l| l.contains("birth date"))
        .expect("birth dates side by side");
    assert!(birth.contains("1979-03-20") && birth.contains("1979-03-15"), "{out}");
    assert!(out.contains("resident_id 37062919790315001X"), "{out}");
    assert!(out.contains("name exact"), "{out}");
    let (ok, out, err) = run(&["review", "--page-size", "1", "--after", "1", "--json"]);
    assert!(ok, "{out}{err}");
    let page: serde_json::Value = serde_json::from_str(&out).expect("review JSON");
    assert_eq!(page["pairs"].as_array().map(Vec::len), Some(1));
    assert_eq!(page["pairs"][0]["id"], 2);
    assert_eq!(page["next_after"], 2);
    assert_eq!(
        page["pairs"][0]["candidate_record"]["attributes"]["name"]["value"],
        "林芳"
    );

    let (ok, out, err) = run(&["decide", "1", "same"]);
    assert!(ok, "{out}{err}");
    assert!(out.contains("survivor: P00000000001"), "{out}");
    let (ok, out, err) = run(&["explain", "P00000000003"]);
    assert!(ok, "{out}{err}");
    assert!(out.contains("P00000000003 was merged into P00000000001"), "{out}");
    assert!(out.contains("put here by a steward (same)"), "{out}");
    let (ok, out, err) = run(&["decide", "2", "different"]);
    assert!(ok, "{out}{err}");
    let (ok, out, err) = run(&["split", "civil.marriage", "J370687-2005-000100", "party", "0"]);
    assert!(ok, "{out}{err}");
    assert!(out.contains("created: P00000000005"), "{out}");
    let (ok, out, err) = run(&["merge", "P00000000005", "P00000000001"]);
    assert!(ok, "{out}{err}");
    assert!(out.contains("survivor: P00000000001"), "{out}");
    let (ok, out, err) = run(&[
        "explain",
        "P00000000001",
        "--identity",
        "tongban-data/pki/platform",
        "--json",
    ]);
    assert!(ok, "{out}{err}");
    let explained: serde_json::Value = serde_json::from_str(&out).expect("explain JSON");
    assert_eq!(explained["sources"].as_array().map(Vec::len), Some(2));

    // Only a steward acts.
    let (ok, out, err) = run(&[
        "merge",
        "P00000000001",
        "P00000000002",
        "--identity",
        "tongban-data/pki/tax",
    ]);
    assert!(!ok, "{out}");
    assert!(err.contains("PermissionDenied"), "{err}");
    let (ok, _, err) = run(&["decide", "1", "same"]);
    assert!(!ok && err.contains("FailedPrecondition"), "{err}");

    // The decisions, the reads and the refusal are in the audit log's chain, intact...
    let verify = || tongban(&["audit", "verify", "--data-dir", "tongban-data"], dir.path());
    let output = verify();
    assert!(output.status.success(), "{}", text(&output.stderr));
    let out = text(&output.stdout);
    let entries: i64 = out
        .split_whitespace()
        .nth(3)
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("audit log intact: N entries: {out}"));
    assert!(entries >= 7, "{out}");
    // An auditor's pseudonym of a number: the same for any spelling, under the hub's key.
    let pseudonym = |number: &str| {
        let output = tongban(
            &["audit", "pseudonym", number, "--data-dir", "tongban-data"],
            dir.path(),
        );
        assert!(output.status.success(), "{}", text(&output.stderr));
        text(&output.stdout).trim().to_owned()
    };
    let upper = pseudonym("37068719850612042X");
    assert!(
        upper.starts_with("identifier hmac:") && upper.len() == "identifier hmac:".len() + 32,
        "{upper}"
    );
    assert_eq!(upper, pseudonym(" 37068719850612042x"));
    assert_ne!(upper, pseudonym("370687197203091514"));
    // ... until an entry is altered behind the hub's back.
    let db = rusqlite::Connection::open(dir.path().join("tongban-data/tongban.db")).expect("open the store");
    // The tax bureau's refused merge, made to look granted.
    let (refusal, outcome): (i64, String) = db
        .query_row(
            "SELECT seq, outcome FROM audit_log WHERE action = 'steward.merge' ORDER BY seq DESC LIMIT 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .expect("the refusal was audited");
    assert!(outcome.starts_with("refused"), "{outcome}");
    db.execute("UPDATE audit_log SET outcome = 'granted' WHERE seq = ?1", [refusal])
        .expect("alter an entry");
    drop(db);
    let output = verify();
    assert!(!output.status.success());
    let err = text(&output.stderr);
    assert!(err.contains(&format!("broken at entry {refusal}")), "{err}");
}

#[test]
fn certs_and_serve_from_a_configuration_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let run = |args: &[&str]| tongban_succeeds(args, dir.path());
    make_ca_and_server_certificate(dir.path());
    let issued = run(&["certs", "client", "--pki", "pki", "--identity", "department:market"]);
    let serial = issued
        .split("serial ")
        .nth(1)
        .and_then(|s| s.split(')').next())
        .expect("serial printed")
        .to_owned();
    run(&[
        "certs",
        "client",
        "--pki",
        "pki",
        "--identity",
        "market",
        "--out",
        "pki/market-revoked",
    ]);
    let revoked_issue = run(&[
        "certs",
        "client",
        "--pki",
        "pki",
        "--identity",
        "market",
        "--out",
        "pki/market-old",
    ]);
    let revoked = revoked_issue
        .split("serial ")
        .nth(1)
        .and_then(|s| s.split(')').next())
        .expect("serial")
        .to_owned();
    assert_ne!(serial, revoked);

    // Operators copy serials from `openssl x509 -noout -serial`: `serial=` and upper case.
    let revoked_as_openssl_prints_it = revoked.to_uppercase();
    let port = free_port();
    let config = format!(
        r#"
listen = "127.0.0.1:{port}"
[tls]
client_ca = "pki/ca.pem"
cert = "pki/server/cert.pem"
key = "pki/server/key.pem"
revoked_serials = ["serial={revoked_as_openssl_prints_it}"]
[store]
kind = "embedded"
path = "data/tongban.db"
"#
    );
    let _serve = start_serve(dir.path(), &config, port, &[]);

    let endpoint = format!("https://127.0.0.1:{port}");
    assert_market_record_accepted(dir.path(), &endpoint, "pki/market");

    let output = push(dir.path(), &endpoint, "pki/market-old", "market.jsonl");
    assert!(!output.status.success(), "a revoked certificate must not push");

    // A department that made its own key: it sends a request, the operator signs it for
    // the identity, and the department pushes with its key and the certificate back.
    run(&[
        "certs",
        "request",
        "--identity",
        "department:market",
        "--out",
        "at-market",
    ]);
    let refused = tongban(
        &[
            "certs",
            "sign",
            "--pki",
            "pki",
            "--identity",
            "tax",
            "--request",
            "at-market/request.pem",
            "--out",
            "x",
        ],
        dir.path(),
    );
    assert!(!refused.status.success(), "a request for market is not signed for tax");
    run(&[
        "certs",
        "sign",
        "--pki",
        "pki",
        "--identity",
        "market",
        "--request",
        "at-market/request.pem",
        "--out",
        "at-market",
    ]);
    // The record went in above: the hub takes this push, and finds nothing new in it.
    let output = push(dir.path(), &endpoint, "at-market", "market.jsonl");
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert!(text(&output.stdout).contains("1 unchanged"), "{}", text(&output.stdout));
}

#[test]
fn demo_prints_the_summary_of_all_eight_record_types() {
    let dir = tempfile::tempdir().expect("tempdir");
    let output = tongban(&["demo", "--people", "100"], dir.path());
    let stdout = text(&output.stdout);
    assert!(output.status.success(), "{stdout}{}", text(&output.stderr));
    for record_type in [
        "tax.taxpayer",
        "hrss.insured_person",
        "market.entity",
        "realestate.title",
        "housingfund.account",
        "construction.permit",
        "civil.marriage",
        "civil.assistance",
    ] {
        let row = stdout
            .lines()
            .find(|l| l.starts_with(record_type))
            .unwrap_or_else(|| panic!("no row for {record_type}:\n{stdout}"));
        let numbers: Vec<u64> = row.split_whitespace().filter_map(|w| w.parse().ok()).collect();
        assert_eq!(numbers.len(), 4, "{row}");
        assert!(numbers[0] > 0, "some {record_type} accepted: {row}");
        assert!(numbers[3] > 0, "some {record_type} rejected: {row}");
    }
    let total = stdout.lines().find(|l| l.starts_with("total")).expect("total row");
    let numbers: Vec<u64> = total.split_whitespace().filter_map(|w| w.parse().ok()).collect();
    assert!(
        numbers[1] > 0 && numbers[2] > 0,
        "replays and stale copies show up: {total}"
    );
    for expected in [
        "unified persons: ",
        "repeated collection avoided: ",
        "pairwise precision 1.0000",
        "a second pull from the saved cursor wrote 0",
    ] {
        assert!(stdout.contains(expected), "{expected:?} in:\n{stdout}");
    }
    let flags = stdout
        .split("Quality flags reported")
        .nth(1)
        .expect("the quality flags section");
    let hrss = flags
        .lines()
        .find(|l| l.trim_start().starts_with("hrss "))
        .expect("hrss flags");
    assert!(hrss.contains("BIRTH_DATE_DISAGREES"), "{hrss}");
}

#[test]
fn the_demos_data_served_again_shows_its_statistics_to_ops() {
    let dir = tempfile::tempdir().expect("tempdir");
    let output = tongban(&["demo", "--people", "50", "--keep", "demo"], dir.path());
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert!(text(&output.stdout).contains("tongban stats --identity"));
    let (_dev, endpoint) = start_dev_with(dir.path(), &["--data-dir", "demo"], Stdio::null());
    let stats = |identity: &str, extra: &[&str]| {
        let mut args = vec!["stats", "--endpoint", &endpoint, "--identity", identity];
        args.extend_from_slice(extra);
        tongban(&args, dir.path())
    };
    let output = stats("demo/pki/ops", &[]);
    let stdout = text(&output.stdout);
    assert!(output.status.success(), "{stdout}{}", text(&output.stderr));
    let totals = stdout.split("Totals").nth(1).expect("totals");
    for department in [
        "tax",
        "hrss",
        "market",
        "realestate",
        "housingfund",
        "construction",
        "civil",
    ] {
        let row = totals
            .lines()
            .find(|l| l.split_whitespace().nth(1) == Some(department))
            .unwrap_or_else(|| panic!("no totals of {department}:\n{stdout}"));
        let numbers: Vec<f64> = row.split_whitespace().filter_map(|w| w.parse().ok()).collect();
        assert!(numbers[0] > 0.0 && numbers[1] > 0.0, "received and accepted: {row}");
    }
    let output = stats("demo/pki/ops", &["--json", "--department", "tax", "--window", "10m"]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).expect("JSON");
    assert_eq!(json["window_minutes"], 10);
    assert_eq!(json["totals"].as_array().map(Vec::len), Some(1));
    assert!(json["totals"][0]["records"]["accepted"].as_u64() > Some(0), "{json}");
    assert!(json["totals"][0]["latency_ms"]["p50"].as_f64() > Some(0.0), "{json}");
    let refused = stats("demo/pki/tax", &[]);
    assert!(!refused.status.success());
    assert!(
        text(&refused.stderr).contains("PermissionDenied"),
        "{}",
        text(&refused.stderr)
    );
}

#[test]
fn serve_on_postgres_with_the_database_url_from_the_environment() {
    let dir = tempfile::tempdir().expect("tempdir");
    let database = Database::create("tongban_cli");
    let url = database.url.clone();

    let dev_pki = dir.path().join("tongban-data/pki");
    let output = tongban(&["certs", "ca", "--pki", "tongban-data/pki"], dir.path());
    assert!(output.status.success(), "{}", text(&output.stderr));
    for args in [
        &[
            "certs",
            "server",
            "--pki",
            "tongban-data/pki",
            "--name",
            "localhost",
            "--name",
            "127.0.0.1",
        ][..],
        &["certs", "client", "--pki", "tongban-data/pki", "--identity", "market"][..],
    ] {
        let output = tongban(args, dir.path());
        assert!(output.status.success(), "{}", text(&output.stderr));
    }
    assert!(dev_pki.join("market/cert.pem").exists());

    let port = free_port();
    let config = format!(
        r#"
listen = "127.0.0.1:{port}"
[tls]
client_ca = "tongban-data/pki/ca.pem"
cert = "tongban-data/pki/server/cert.pem"
key = "tongban-data/pki/server/key.pem"
[store]
kind = "postgres"
url = ""
pool_size = 2
"#
    );
    let serve = start_serve(dir.path(), &config, port, &[("TONGBAN_DATABASE_URL", url.as_str())]);

    let endpoint = format!("https://127.0.0.1:{port}");
    assert_market_record_accepted(dir.path(), &endpoint, "tongban-data/pki/market");
    drop(serve);

    // Without a URL anywhere, serve refuses to start and says how to give one.
    let output = Command::new(TONGBAN)
        .args(["serve", "--config", "tongban.toml"])
        .env_remove("TONGBAN_DATABASE_URL")
        .current_dir(dir.path())
        .output()
        .expect("serve");
    assert!(!output.status.success());
    assert!(
        text(&output.stderr).contains("TONGBAN_DATABASE_URL"),
        "{}",
        text(&output.stderr)
    );
}

#[test]
fn demo_data_served_again_gives_each_department_its_quality_report() {
    let dir = tempfile::tempdir().expect("tempdir");
    let kept = dir.path().join("demo");
    let kept_arg = kept.to_str().expect("UTF-8 path");
    let output = tongban(&["demo", "--people", "100", "--keep", kept_arg], dir.path());
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert!(text(&output.stdout).contains("tongban quality --identity"));

    let (_dev, endpoint) = start_dev_with(dir.path(), &["--data-dir", kept_arg], Stdio::null());
    let quality = |identity: &str, extra: &[&str]| {
        let identity = kept.join("pki").join(identity);
        let mut args = vec![
            "quality",
            "--endpoint",
            &endpoint,
            "--identity",
            identity.to_str().expect("UTF-8 path"),
        ];
        args.extend_from_slice(extra);
        tongban(&args, dir.path())
    };

    // The generator writes hrss records whose typed birth date disagrees with the
    // identity number: the report counts them and lists each with its pointer.
    let output = quality("hrss", &["--all"]);
    let stdout = text(&output.stdout);
    assert!(output.status.success(), "{stdout}{}", text(&output.stderr));
    let count_row = stdout
        .lines()
        .find(|l| l.contains("hrss.insured_person") && l.contains("BIRTH_DATE_DISAGREES") && !l.contains(" at "))
        .unwrap_or_else(|| panic!("no count of BIRTH_DATE_DISAGREES:\n{stdout}"));
    let counted: u64 = count_row
        .split_whitespace()
        .last()
        .and_then(|n| n.parse().ok())
        .expect("a count");
    let listed = stdout
        .lines()
        .filter(|l| l.contains("BIRTH_DATE_DISAGREES at /csrq"))
        .count();
    assert_eq!(listed as u64, counted, "{stdout}");
    assert!(!stdout.contains("more: "), "--all pages to the end:\n{stdout}");

    // As JSON, filtered by code: only hrss records with that code.
    let output = quality("hrss", &["--json", "--code", "BIRTH_DATE_DISAGREES"]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).expect("JSON report");
    let records = report["records"].as_array().expect("records");
    assert_eq!(records.len() as u64, counted);
    assert!(records.iter().all(|r| r["record_type"] == "hrss.insured_person"
        && r["flags"]
            .as_array()
            .is_some_and(|f| f.iter().all(|f| f["code"] == "BIRTH_DATE_DISAGREES"))));

    // Another department's record type, and the platform, are refused.
    let output = quality("tax", &["--record-type", "hrss.insured_person"]);
    assert!(!output.status.success());
    assert!(
        text(&output.stderr).contains("PermissionDenied"),
        "{}",
        text(&output.stderr)
    );
    let output = quality("platform", &[]);
    assert!(!output.status.success());
    assert!(
        text(&output.stderr).contains("PermissionDenied"),
        "{}",
        text(&output.stderr)
    );
}

/// `tongban backup` copies a running dev hub's store: the copy opens and holds what was
/// acknowledged, a second backup to the same file is refused, and `tongban health`
/// answers for the hub (and refuses without a certificate the hub's CA signed).
#[test]
fn backup_of_a_running_hub_and_its_health() {
    use tongban_gateway::store::Store;
    let dir = tempfile::tempdir().expect("tempdir");
    let (_dev, endpoint) = start_dev(dir.path(), Stdio::null());
    write_tax_file(&dir.path().join("tax.jsonl"));
    let output = push(dir.path(), &endpoint, "tongban-data/pki/tax", "tax.jsonl");
    assert!(text(&output.stdout).contains("2 accepted"), "{}", text(&output.stdout));

    let health = tongban(
        &["health", "--endpoint", &endpoint, "--identity", "tongban-data/pki/ops"],
        dir.path(),
    );
    assert!(health.status.success(), "{}", text(&health.stderr));
    assert_eq!(text(&health.stdout).trim(), "SERVING");
    // A certificate from another CA is turned away: no answer, no success.
    let other = tempfile::tempdir().expect("tempdir");
    let foreign = tongban_gateway::pki::PkiLayout::new(other.path().join("pki"));
    foreign.ensure_dev().expect("another PKI");
    let refused = Command::new(TONGBAN)
        .args(["health", "--endpoint", &endpoint, "--live", "--identity"])
        .arg(foreign.identity_dir(&tongban_gateway::identity::Identity::Ops))
        .arg("--ca")
        .arg(dir.path().join("tongban-data/pki/ca.pem"))
        .output()
        .expect("tongban health");
    assert!(!refused.status.success(), "a foreign certificate is not answered");

    let backup = tongban(&["backup", "--out", "copy.db"], dir.path());
    assert!(backup.status.success(), "{}", text(&backup.stderr));
    let again = tongban(&["backup", "--out", "copy.db"], dir.path());
    assert!(!again.status.success(), "a backup does not overwrite");
    assert!(text(&again.stderr).contains("exists"), "{}", text(&again.stderr));

    let copy =
        tongban_gateway::store::embedded::EmbeddedStore::open(&dir.path().join("copy.db")).expect("the copy opens");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    for id in ["50000000000000000001", "50000000000000000003"] {
        let stored = runtime
            .block_on(copy.current("tax.taxpayer", id))
            .expect("read the copy");
        assert!(stored.is_some(), "{id} is in the copy");
    }
}

/// A server certificate renewed in place (as cert-manager or an operator copying files
/// does) is served without a restart: the new one names only `localhost`, so after the
/// hub has looked at its files again a client asking for 127.0.0.1 is refused by its own
/// check of the name, and one asking for localhost gets in.
#[test]
fn a_renewed_server_certificate_is_served_without_a_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let run = |args: &[&str]| {
        tongban_succeeds(args, dir.path());
    };
    make_ca_and_server_certificate(dir.path());
    run(&["certs", "client", "--pki", "pki", "--identity", "ops"]);
    let port = free_port();
    let config = format!(
        "listen = \"127.0.0.1:{port}\"\n[tls]\nclient_ca = \"pki/ca.pem\"\ncert = \"pki/server/cert.pem\"\nkey = \"pki/server/key.pem\"\n[store]\nkind = \"embedded\"\npath = \"data/tongban.db\"\n"
    );
    let _serve = start_serve(dir.path(), &config, port, &[]);
    let health = |host: &str| {
        tongban(
            &[
                "health",
                "--identity",
                "pki/ops",
                "--endpoint",
                &format!("https://{host}:{port}"),
            ],
            dir.path(),
        )
    };
    assert!(
        health("127.0.0.1").status.success(),
        "the first certificate names 127.0.0.1"
    );

    // Renewal: a new certificate and key written over the old ones.
    run(&["certs", "server", "--pki", "pki", "--name", "localhost"]);
    let deadline = Instant::now() + tongban_gateway::server_certificate::RECHECK * 3;
    while health("127.0.0.1").status.success() {
        assert!(Instant::now() < deadline, "the renewed certificate is not served");
        std::thread::sleep(Duration::from_millis(500));
    }
    let by_name = health("localhost");
    assert!(by_name.status.success(), "{}", text(&by_name.stderr));
}

/// A reader that goes away (`tongban ... | head -1`, `| grep -q`) stops the command
/// quietly with a shell's status for it, not a panic.
#[test]
fn a_closed_stdout_stops_a_command_quietly() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut child = Command::new(TONGBAN)
        .args(["certs", "ca", "--pki", "pki"])
        .current_dir(dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("tongban certs ca");
    // The reader goes away before the command prints.
    drop(child.stdout.take());
    let output = child.wait_with_output().expect("wait");
    let stderr = text(&output.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(output.status.code(), Some(141), "{stderr}");
}
