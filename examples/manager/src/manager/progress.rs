//! Sync progress: one indicatif bar per location on a terminal, plain lines otherwise,
//! nothing with `--json`.

use std::collections::{BTreeMap, HashMap};
use std::io::IsTerminal;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use vppkit::core::LocationId;
use vppkit::engine::{ProgressReporter, SyncProgress, SyncStep};

use super::status;

/// How progress is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    /// Bars on stderr (a terminal).
    Bars,
    /// One line per location start and end, on stderr.
    Lines,
    /// Nothing (`--json`).
    Quiet,
}

impl Mode {
    /// Bars on a terminal, lines otherwise (and with `--log-format json`), nothing for
    /// JSON output.
    pub(crate) fn for_output(json: bool) -> Self {
        if json {
            Mode::Quiet
        } else if std::io::stderr().is_terminal() && !status::is_json() {
            Mode::Bars
        } else {
            Mode::Lines
        }
    }
}

#[derive(Default)]
struct LocationBar {
    bar: Option<ProgressBar>,
    pages: BTreeMap<&'static str, (u32, u32)>,
    items: BTreeMap<&'static str, u64>,
}

fn step_name(e: &SyncStep) -> &'static str {
    match e {
        SyncStep::Assets => "assets",
        SyncStep::Assignments => "assignments",
        SyncStep::Users => "users",
        SyncStep::Metadata => "metadata",
        _ => "other",
    }
}

/// A reporter that draws sync progress in `mode`.
pub(crate) fn reporter(mode: Mode) -> ProgressReporter {
    if mode == Mode::Quiet {
        return ProgressReporter::none();
    }
    let multi = MultiProgress::with_draw_target(ProgressDrawTarget::stderr());
    let style = ProgressStyle::with_template(
        "{prefix:<28} [{bar:30.cyan/blue}] {pos:>3}/{len:<3} pages  {msg}",
    )
    .unwrap_or_else(|_| ProgressStyle::default_bar())
    .progress_chars("=> ");
    let state: Arc<Mutex<HashMap<LocationId, LocationBar>>> = Arc::default();
    ProgressReporter::callback(move |p| {
        let mut bars = state.lock().unwrap_or_else(|e| e.into_inner());
        match p {
            SyncProgress::Started { location, kind } => {
                let entry = bars.entry(location.clone()).or_default();
                if mode == Mode::Bars {
                    let bar = multi.add(ProgressBar::new(1));
                    bar.set_style(style.clone());
                    bar.set_prefix(location.to_string());
                    bar.set_message(format!("{kind} sync"));
                    bar.enable_steady_tick(Duration::from_millis(120));
                    entry.bar = Some(bar);
                } else {
                    status::info(&format!("sync {location}: started ({kind} sync)"));
                }
            }
            SyncProgress::Page {
                location,
                endpoint,
                pages_done,
                total_pages,
                items,
            } => {
                let entry = bars.entry(location.clone()).or_default();
                let name = step_name(endpoint);
                entry
                    .pages
                    .insert(name, (*pages_done, total_pages.unwrap_or(*pages_done)));
                entry.items.insert(name, *items);
                if let Some(bar) = &entry.bar {
                    let done: u32 = entry.pages.values().map(|(d, _)| d).sum();
                    let total: u32 = entry.pages.values().map(|(d, t)| (*t).max(*d)).sum();
                    bar.set_length(u64::from(total.max(1)));
                    bar.set_position(u64::from(done));
                    bar.set_message(format!("{name}: {items} items"));
                }
            }
            SyncProgress::Restarted { location, endpoint } => {
                let name = step_name(endpoint);
                if let Some(bar) = bars.get(location).and_then(|b| b.bar.as_ref()) {
                    bar.set_message(format!("{name}: Apple changed the data, walking again"));
                }
            }
            SyncProgress::Finished { location, outcome } => {
                let text = match &outcome.error {
                    None => format!(
                        "done ({} sync): {} assets, {} assignments, {} users",
                        outcome.kind, outcome.assets, outcome.assignments, outcome.users
                    ),
                    Some(e) => format!("failed: {e}"),
                };
                match bars.get(location).and_then(|b| b.bar.as_ref()) {
                    Some(bar) => {
                        if let Some(len) = bar.length() {
                            bar.set_position(len);
                        }
                        bar.finish_with_message(text);
                    }
                    // A failure is reported once, by the command's error line.
                    None if outcome.error.is_none() => {
                        status::info(&format!("sync {location}: {text}"))
                    }
                    None => {}
                }
            }
            _ => {}
        }
    })
}
