//! The guides in `docs/` are run, so that they cannot rot: every fenced block whose info
//! string is `sh` is executed with bash, in the order of the guide, in a fresh folder
//! per guide that holds links to the repository's `deploy/`, `schemas/` and `proto/`,
//! with this build's `tongban` first on the PATH and `TONGBAN_LISTEN` /
//! `TONGBAN_ENDPOINT` set to a free port (so the guides' default addresses reach the
//! guide's own hub). Blocks of any other info string are samples and are not run.
//!
//! An HTML comment on the line before a block's fence changes how it is run:
//! - `<!-- guide: background -->`: one command started and left running (the hub); the
//!   next block runs once the hub takes connections on the port; stopped at the end.
//! - `<!-- guide: fails "text" -->`: the block must exit with status 1 and print `text`
//!   (a refusal shown on purpose, not any error).
//! - `<!-- guide: postgres -->`: `TONGBAN_DATABASE_URL` names a fresh database, the same
//!   for every such block of the guide, dropped at its end.
//! - `<!-- guide: infrastructure -->`: needs a Docker engine, a Kubernetes cluster or
//!   root with systemd, so it is not executed: every path it names under `deploy/` must
//!   exist, every `tongban` command in it must parse as the binary would parse it, and
//!   every kustomization it applies is rendered with `kubectl kustomize` (where kubectl
//!   is installed).
//!
//! Every block runs in a process group of its own, killed when the guide ends, so that
//! what a block left in the background does not outlive the test.
//!
//! The operating guide's configuration reference is checked against
//! `deploy/tongban.example.toml`, whose values a `config.rs` test proves to be the code's
//! defaults.

use std::collections::BTreeSet;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

mod common;

use common::{free_port, Database, Running, TONGBAN};

/// The longest any one block may take (a push of a few records, a certificate).
const BLOCK_TIMEOUT: Duration = Duration::from_secs(180);

#[derive(Debug, Clone, PartialEq, Eq)]
enum Mode {
    Run,
    Background,
    /// Exit status 1, and this text in what the block printed.
    Fails(String),
    Postgres,
    Infrastructure,
}

/// One `sh` block of a guide.
#[derive(Debug)]
struct Block {
    /// Line of the opening fence, 1-based, for the failure message.
    line: usize,
    mode: Mode,
    script: String,
}

fn repository() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the workspace root")
        .to_owned()
}

/// The `sh` blocks of `markdown`, with their modes. An unknown annotation is an error,
/// so that a typo does not turn a block into one run the wrong way.
fn blocks(markdown: &str) -> Result<Vec<Block>, String> {
    let mut found = Vec::new();
    let lines: Vec<&str> = markdown.lines().collect();
    let mut i = 0;
    while i < lines.len() {
        let trimmed = lines[i].trim_start();
        let Some(info) = trimmed.strip_prefix("```") else {
            i += 1;
            continue;
        };
        let indent = lines[i].len() - trimmed.len();
        let info = info.trim().to_owned();
        let start = i;
        let mut body = Vec::new();
        i += 1;
        while i < lines.len() && !lines[i].trim_start().starts_with("```") {
            let line = lines[i];
            // A block inside a list item is indented with its fence.
            body.push(
                line.get(indent..)
                    .filter(|_| line.len() >= indent)
                    .unwrap_or(line.trim_start()),
            );
            i += 1;
        }
        if i == lines.len() {
            return Err(format!("line {}: a block that never closes", start + 1));
        }
        i += 1;
        let annotation = lines[..start]
            .iter()
            .rev()
            .find(|l| !l.trim().is_empty())
            .and_then(|l| l.trim().strip_prefix("<!-- guide:"))
            .and_then(|l| l.strip_suffix("-->"))
            .map(str::trim);
        let mode = match annotation {
            None => Mode::Run,
            Some("background") => Mode::Background,
            Some("postgres") => Mode::Postgres,
            Some("infrastructure") => Mode::Infrastructure,
            Some(other) => match other
                .strip_prefix("fails \"")
                .and_then(|t| t.strip_suffix('"'))
                .filter(|t| !t.is_empty())
            {
                Some(expected) => Mode::Fails(expected.to_owned()),
                None => return Err(format!("line {}: unknown annotation {other:?}", start + 1)),
            },
        };
        if info == "sh" {
            found.push(Block {
                line: start + 1,
                mode,
                script: body.join("\n"),
            });
        } else if annotation.is_some() {
            return Err(format!(
                "line {}: an annotation on a {info:?} block, which is not run",
                start + 1
            ));
        }
    }
    Ok(found)
}

/// A guide being run: its folder, the environment of its blocks, what it left running.
/// (Fields drop in order: the processes go before the database and the folder.)
struct GuideRun {
    /// The process group of every block started, killed at the end.
    groups: Vec<u32>,
    hub: Option<(Running, PathBuf)>,
    database: Option<Database>,
    name: &'static str,
    port: u16,
    path: String,
    dir: tempfile::TempDir,
}

impl Drop for GuideRun {
    fn drop(&mut self) {
        for group in &self.groups {
            let _ = Command::new("kill")
                .args(["-KILL", "--", &format!("-{group}")])
                .stderr(Stdio::null())
                .status();
        }
    }
}

impl GuideRun {
    fn new(name: &'static str) -> GuideRun {
        let dir = tempfile::tempdir().expect("a folder for the guide");
        for link in ["deploy", "schemas", "proto"] {
            std::os::unix::fs::symlink(repository().join(link), dir.path().join(link)).expect("a link");
        }
        let binaries = Path::new(TONGBAN).parent().expect("the binary's folder");
        let path = format!("{}:{}", binaries.display(), std::env::var("PATH").unwrap_or_default());
        GuideRun {
            groups: Vec::new(),
            hub: None,
            database: None,
            name,
            port: free_port(),
            path,
            dir,
        }
    }

    /// bash with the guide's environment, in its folder; nothing of the test's own
    /// configuration leaks in.
    fn bash(&self, script: &str, database: Option<&str>) -> Command {
        use std::os::unix::process::CommandExt;
        let mut command = Command::new("bash");
        command
            .process_group(0)
            .args(["-euo", "pipefail", "-c", script])
            .current_dir(self.dir.path())
            .env("PATH", &self.path)
            .env("TONGBAN_LISTEN", format!("127.0.0.1:{}", self.port))
            .env("TONGBAN_ENDPOINT", format!("https://127.0.0.1:{}", self.port))
            .env("NO_COLOR", "1")
            .env_remove("TONGBAN_CONFIG")
            .env_remove("TONGBAN_TLS_KEY")
            .env_remove("TONGBAN_AUDIT_KEY")
            .env_remove("TONGBAN_DATABASE_URL")
            .stdin(Stdio::null());
        if let Some(url) = database {
            command.env("TONGBAN_DATABASE_URL", url);
        }
        command
    }

    fn run(&mut self, block: &Block) {
        let context = format!("docs/{}.md, block at line {}", self.name, block.line);
        match &block.mode {
            Mode::Run => {
                let (status, output) = self.execute(&block.script, None, &context);
                self.expect(status == Some(0), block, &output, &context);
            }
            Mode::Fails(expected) => {
                let (status, output) = self.execute(&block.script, None, &context);
                self.expect(
                    status == Some(1) && output.contains(expected.as_str()),
                    block,
                    &output,
                    &context,
                );
            }
            Mode::Postgres => {
                let url = self
                    .database
                    .get_or_insert_with(|| Database::create(&format!("guide_{}", self.name)))
                    .url
                    .clone();
                let (status, output) = self.execute(&block.script, Some(&url), &context);
                self.expect(status == Some(0), block, &output, &context);
            }
            Mode::Background => self.start_background(block, &context),
            Mode::Infrastructure => check_infrastructure(&block.script, self.dir.path(), &context),
        }
    }

    fn expect(&self, as_expected: bool, block: &Block, output: &str, context: &str) {
        let wanted = match &block.mode {
            Mode::Fails(expected) => format!("exit with status 1 saying {expected:?}"),
            _ => "succeed".to_owned(),
        };
        let hub_log = self
            .hub
            .as_ref()
            .and_then(|(_, log)| std::fs::read_to_string(log).ok())
            .unwrap_or_default();
        assert!(
            as_expected,
            "{context}: the block did not {wanted}\n--- block\n{}\n--- its output\n{output}\n--- the hub's log\n{hub_log}",
            block.script
        );
    }

    /// Runs `script` to its end (or the timeout): its exit status, and its output.
    fn execute(&mut self, script: &str, database: Option<&str>, context: &str) -> (Option<i32>, String) {
        let output_path = self.dir.path().join(".guide-output");
        let output = std::fs::File::create(&output_path).expect("an output file");
        let mut child = self
            .bash(script, database)
            .stdout(output.try_clone().expect("the output file"))
            .stderr(output)
            .spawn()
            .expect("bash");
        self.groups.push(child.id());
        let status = wait_with_deadline(&mut child, BLOCK_TIMEOUT, context);
        let mut text = String::new();
        let _ = std::fs::File::open(&output_path).and_then(|mut f| f.read_to_string(&mut text));
        (status.code(), text)
    }

    fn start_background(&mut self, block: &Block, context: &str) {
        assert!(self.hub.is_none(), "{context}: a second background block");
        let command = block.script.trim();
        assert!(
            !command.is_empty() && !command.contains('\n'),
            "{context}: a background block holds one command"
        );
        let log_path = self.dir.path().join(".guide-hub.log");
        let log = std::fs::File::create(&log_path).expect("the hub's log");
        // exec: the hub is the child itself, so stopping the child stops the hub.
        let mut child = Running(
            self.bash(&format!("exec {command}"), None)
                .stdout(log.try_clone().expect("the hub's log"))
                .stderr(log)
                .spawn()
                .expect("bash"),
        );
        self.groups.push(child.0.id());
        let deadline = Instant::now() + Duration::from_secs(60);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            if let Ok(Some(status)) = child.0.try_wait() {
                let log = std::fs::read_to_string(&log_path).unwrap_or_default();
                panic!("{context}: `{command}` exited with {status}:\n{log}");
            }
            assert!(Instant::now() < deadline, "{context}: `{command}` did not listen");
            std::thread::sleep(Duration::from_millis(100));
        }
        self.hub = Some((child, log_path));
    }
}

fn wait_with_deadline(child: &mut Child, timeout: Duration, context: &str) -> std::process::ExitStatus {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = child.try_wait().expect("wait for bash") {
            return status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{context}: the block took longer than {timeout:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// What can be checked of a command for infrastructure this machine lacks: the files it
/// names exist, and the kustomizations it applies render.
fn check_infrastructure(script: &str, dir: &Path, context: &str) {
    let words: Vec<&str> = script
        .split(|c: char| c.is_whitespace() || c == '=')
        .map(|w| w.trim_matches(|c| c == '"' || c == '\'' || c == '\\'))
        .filter(|w| !w.is_empty())
        .collect();
    let mut named = 0;
    for word in &words {
        if word.starts_with("deploy/") {
            named += 1;
            assert!(dir.join(word).exists(), "{context}: {word} does not exist");
        }
    }
    for command in tongban_commands(script) {
        if let Err(e) = <tongban_gateway::cli::Cli as clap::Parser>::try_parse_from(&command) {
            panic!(
                "{context}: `{}` is not a command tongban takes:\n{e}",
                command.join(" ")
            );
        }
    }
    let kubectl = Command::new("kubectl").arg("version").arg("--client").output();
    for pair in words.windows(2) {
        let applies = matches!(pair[0], "-k" | "--kustomize" | "kustomize");
        if !applies || !pair[1].starts_with("deploy/") {
            continue;
        }
        match &kubectl {
            Ok(_) => {
                let rendered = Command::new("kubectl")
                    .args(["kustomize", pair[1]])
                    .current_dir(dir)
                    .output()
                    .expect("kubectl kustomize");
                assert!(
                    rendered.status.success(),
                    "{context}: `kubectl kustomize {}` fails:\n{}",
                    pair[1],
                    String::from_utf8_lossy(&rendered.stderr)
                );
            }
            Err(_) => eprintln!("{context}: kubectl is not installed; {} not rendered", pair[1]),
        }
    }
    eprintln!("{context}: not executed (infrastructure); {named} paths checked");
}

/// The words of one shell command line: quotes group and are removed, `\` at the end
/// of a line and a comment after `#` are dropped (enough for the guides' commands).
fn shell_words(line: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut quote = None;
    let mut in_word = false;
    for c in line.chars() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), c) => word.push(c),
            (None, '\'' | '"') => {
                quote = Some(c);
                in_word = true;
            }
            (None, '#') if !in_word => break,
            (None, c) if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            (None, '\\') => {}
            (None, c) => {
                word.push(c);
                in_word = true;
            }
        }
    }
    if in_word {
        words.push(word);
    }
    words
}

/// The `tongban` commands of a script, each as its words from `tongban` on: lines joined
/// where they end in `\\`, split at `&&`, `||`, `;` and `|`, and a leading `sudo -u
/// USER` or `NAME=value` set aside.
fn tongban_commands(script: &str) -> Vec<Vec<String>> {
    let joined = script.replace("\\\n", " ");
    let mut commands = Vec::new();
    for line in joined.lines() {
        let words = shell_words(line);
        for segment in words.split(|w| matches!(w.as_str(), "&&" | "||" | ";" | "|")) {
            let mut rest = segment;
            loop {
                match rest {
                    [sudo, flag, _user, tail @ ..] if sudo == "sudo" && flag == "-u" => rest = tail,
                    [sudo, tail @ ..] if sudo == "sudo" => rest = tail,
                    [assignment, tail @ ..] if assignment.contains('=') && !assignment.starts_with('-') => rest = tail,
                    _ => break,
                }
            }
            if let [program, arguments @ ..] = rest {
                if program == "tongban" || program.ends_with("/bin/tongban") {
                    commands.push(
                        std::iter::once("tongban".to_owned())
                            .chain(arguments.iter().cloned())
                            .collect(),
                    );
                }
            }
        }
    }
    commands
}

/// Runs every `sh` block of `docs/<name>.md`, in order.
fn run_guide(name: &'static str) {
    let path = repository().join("docs").join(format!("{name}.md"));
    let markdown = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let blocks = blocks(&markdown).unwrap_or_else(|e| panic!("docs/{name}.md: {e}"));
    assert!(!blocks.is_empty(), "docs/{name}.md has no commands");
    let mut guide = GuideRun::new(name);
    for block in &blocks {
        guide.run(block);
    }
    let executed = blocks.iter().filter(|b| b.mode != Mode::Infrastructure).count();
    eprintln!(
        "docs/{name}.md: {executed} blocks run, {} checked without the infrastructure they need",
        blocks.len() - executed
    );
}

#[test]
fn the_onboarding_guide_runs() {
    run_guide("onboarding");
}

#[test]
fn the_platform_guide_runs() {
    run_guide("platform");
}

#[test]
fn the_operating_guide_runs() {
    run_guide("operating");
}

/// Every setting of the example configuration, with the open-ended tables' keys
/// written as the reference writes them.
fn example_settings(example: &str) -> BTreeSet<String> {
    let mut table = String::new();
    let mut keys = BTreeSet::new();
    for line in example.lines() {
        let line = line.trim();
        if let Some(header) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            table = header.to_owned();
            continue;
        }
        // Set, or shown commented out: `# otlp_endpoint = "..."`.
        let setting = line
            .strip_prefix('#')
            .map_or(line, |l| l.strip_prefix(' ').unwrap_or(l));
        let Some((key, value)) = setting.split_once(" = ") else {
            continue;
        };
        if key.is_empty() || !key.chars().all(|c| c.is_ascii_lowercase() || c == '_') {
            continue;
        }
        let parts: Vec<&str> = table.split('.').filter(|p| !p.is_empty()).collect();
        let generic = match parts.as_slice() {
            ["survivorship", kind] => format!("survivorship.{kind}.<attribute>"),
            ["sharing"] => "sharing.<department>".to_owned(),
            ["matching", _, "fields", _] if value.trim_start().starts_with('{') => {
                "matching.<kind>.fields.<field>.<level>".to_owned()
            }
            ["matching", _] => format!("matching.<kind>.{key}"),
            [] => key.to_owned(),
            _ => format!("{table}.{key}"),
        };
        keys.insert(generic);
    }
    // The embedded store's settings, which the example names in prose.
    keys.insert("store.path".to_owned());
    keys.insert("store.busy_timeout_ms".to_owned());
    keys
}

/// The keys of the tables under `## Configuration reference`: the first cell of each
/// row, in backticks.
fn reference_settings(guide: &str) -> BTreeSet<String> {
    let section = guide
        .split("\n## ")
        .find(|s| s.starts_with("Configuration reference"))
        .expect("docs/operating.md has a section \"Configuration reference\"");
    section
        .lines()
        .filter_map(|l| l.trim().strip_prefix("| `"))
        .filter_map(|l| l.split_once('`'))
        .map(|(key, _)| key.to_owned())
        .collect()
}

#[test]
fn the_configuration_reference_names_every_setting_and_no_other() {
    let example =
        std::fs::read_to_string(repository().join("deploy/tongban.example.toml")).expect("the example configuration");
    let guide = std::fs::read_to_string(repository().join("docs/operating.md")).expect("the operating guide");
    let documented = reference_settings(&guide);
    let settings = example_settings(&example);
    let missing: Vec<_> = settings.difference(&documented).collect();
    let unknown: Vec<_> = documented.difference(&settings).collect();
    assert!(
        missing.is_empty(),
        "settings without a row in the reference: {missing:?}"
    );
    assert!(unknown.is_empty(), "rows naming no setting of the example: {unknown:?}");
}

#[test]
fn blocks_are_read_with_their_annotations() {
    let markdown = "text\n\n```sh\necho one\n```\n\n<!-- guide: fails \"no\" -->\n```sh\nfalse\n```\n\n```text\nsample\n```\n\n1. a step\n\n   <!-- guide: background -->\n   ```sh\n   tongban dev\n   ```\n";
    let found = blocks(markdown).expect("blocks");
    let seen: Vec<(Mode, &str)> = found.iter().map(|b| (b.mode.clone(), b.script.as_str())).collect();
    assert_eq!(
        seen,
        vec![
            (Mode::Run, "echo one"),
            (Mode::Fails("no".to_owned()), "false"),
            (Mode::Background, "tongban dev")
        ]
    );
    assert!(blocks("<!-- guide: sometimes -->\n```sh\ntrue\n```\n").is_err());
    assert!(blocks("<!-- guide: fails \"x\" -->\n```text\nx\n```\n").is_err());
    assert!(
        blocks("<!-- guide: fails -->\n```sh\nfalse\n```\n").is_err(),
        "a failure says what it prints"
    );
    assert!(blocks("```sh\nnever closed\n").is_err());
}

#[test]
fn command_lines_are_split_as_a_shell_splits_them() {
    assert_eq!(
        shell_words(r#"sudo -u tongban tongban backup --config "/etc/tongban/tongban.toml" --out 'a b' \"#),
        vec![
            "sudo",
            "-u",
            "tongban",
            "tongban",
            "backup",
            "--config",
            "/etc/tongban/tongban.toml",
            "--out",
            "a b"
        ]
    );
    assert_eq!(
        shell_words("kubectl apply -k deploy/x # a comment"),
        vec!["kubectl", "apply", "-k", "deploy/x"]
    );
    let script = "install -m 0755 target/release/tongban /usr/local/bin/tongban\nsudo -u tongban tongban backup \\\n  --out x && RUST_LOG=info /usr/local/bin/tongban health --live";
    assert_eq!(
        tongban_commands(script),
        vec![
            vec!["tongban", "backup", "--out", "x"],
            vec!["tongban", "health", "--live"]
        ]
    );
}

#[test]
fn the_example_settings_are_read_as_the_reference_names_them() {
    let example = "listen = \"x\"\n[store]\nkind = \"postgres\"\n[telemetry]\n# otlp_endpoint = \"http://x\"\n# Prose with a = sign in it.\n[survivorship.person]\nmarital_status = \"civil\"\n[sharing]\n# hrss = [\"names\"]\n[matching.person]\nlink = 20.0\n[matching.person.fields.name]\nexact = { m = 0.9, u = 0.1 }\n";
    let keys: Vec<String> = example_settings(example).into_iter().collect();
    assert_eq!(
        keys,
        vec![
            "listen",
            "matching.<kind>.fields.<field>.<level>",
            "matching.<kind>.link",
            "sharing.<department>",
            "store.busy_timeout_ms",
            "store.kind",
            "store.path",
            "survivorship.person.<attribute>",
            "telemetry.otlp_endpoint"
        ]
    );
}
