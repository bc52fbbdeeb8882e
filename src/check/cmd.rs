//! `kvraft check FILE...`: checks recorded histories (JSON or Jepsen EDN)
//! for linearizability and prints one line per file.

use std::path::{Path, PathBuf};
use std::time::Instant;

use super::checker::check_history;

/// Checks every file; prints one line each. Returns 0 when all are
/// linearizable, 1 when some are not, 2 when some file cannot be read or
/// parsed (the error names the file and line).
pub fn run_check(paths: &[PathBuf]) -> i32 {
    run_check_with(paths, None)
}

/// Like [`run_check`]; with `timeline_dir`, also writes an HTML timeline
/// (`<file name>.html`) there for every history that is not linearizable.
pub fn run_check_with(paths: &[PathBuf], timeline_dir: Option<&Path>) -> i32 {
    let mut code = 0;
    if paths.is_empty() {
        eprintln!("check: no history files given");
        return 2;
    }
    for path in paths {
        let shown = path.display();
        let loaded = super::input::load_any(path).and_then(|h| {
            // Nothing to check is not a verdict of "linearizable".
            if h.ops.is_empty() {
                Err(super::history::HistoryError::Empty { path: shown.to_string() })
            } else {
                Ok(h)
            }
        });
        let history = match loaded {
            Ok(h) => h,
            Err(e) => {
                println!("{shown}: error: {}", strip_prefix(&e.to_string(), &shown.to_string()));
                code = 2;
                continue;
            }
        };
        let start = Instant::now();
        let verdict = check_history(&history.ops);
        let ms = start.elapsed().as_secs_f64() * 1e3;
        let n = history.ops.len();
        if verdict.linearizable {
            println!("{shown}: {n} ops, linearizable, checked in {ms:.2} ms");
        } else {
            let key = verdict.failing_key.as_deref().unwrap_or("");
            let others = verdict.failing_keys.len().saturating_sub(1);
            let more = if others > 0 { format!(" and {others} more key(s)") } else { String::new() };
            println!("{shown}: {n} ops, NOT linearizable (key {key:?}{more}), checked in {ms:.2} ms");
            if code == 0 {
                code = 1;
            }
            if let Some(dir) = timeline_dir {
                let name =
                    path.file_name().map(|f| f.to_string_lossy().into_owned()).unwrap_or_else(|| "history".into());
                let out = dir.join(format!("{name}.html"));
                match super::timeline::write_timeline_html(&history, &verdict, &out) {
                    Ok(()) => println!("  timeline: {}", out.display()),
                    Err(e) => println!("  cannot write timeline {}: {e}", out.display()),
                }
            }
        }
    }
    code
}

/// Errors already start with the path; avoid printing it twice.
fn strip_prefix(msg: &str, path: &str) -> String {
    match msg.strip_prefix(path).and_then(|m| m.strip_prefix(": ")) {
        Some(rest) => rest.to_string(),
        None => msg.to_string(),
    }
}
