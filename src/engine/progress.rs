//! What the user sees during a run: on a terminal, an overall bar (bytes, rate, ETA against the
//! estimated total) and one line per worker; otherwise (or with --quiet) plain log lines. The
//! streams report bytes once per run of frames, never per row.

use std::io::IsTerminal;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

pub struct Progress {
    bars: Option<(MultiProgress, ProgressBar, Vec<ProgressBar>)>,
    quiet: bool,
}

impl Progress {
    pub fn new(workers: usize, total_bytes: u64, units: usize, quiet: bool) -> Progress {
        if quiet || !std::io::stderr().is_terminal() {
            return Progress { bars: None, quiet };
        }
        let mp = MultiProgress::with_draw_target(ProgressDrawTarget::stderr_with_hz(8));
        let overall = mp.add(ProgressBar::new(total_bytes.max(1)));
        overall.set_style(
            ProgressStyle::with_template(
                "{prefix:>8} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} ETA {eta} {msg}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
        );
        overall.set_prefix("total");
        overall.set_message(format!("0/{units} units"));
        let workers = (0..workers)
            .map(|i| {
                let bar = mp.add(ProgressBar::new_spinner());
                bar.set_style(
                    ProgressStyle::with_template(
                        "{prefix:>8} {spinner} {msg} {bytes} {bytes_per_sec}",
                    )
                    .unwrap_or_else(|_| ProgressStyle::default_spinner()),
                );
                bar.set_prefix(format!("worker {}", i + 1));
                bar.set_message("idle");
                bar
            })
            .collect();
        Progress {
            bars: Some((mp, overall, workers)),
            quiet,
        }
    }

    pub fn unit_start(&self, worker: usize, name: &str) {
        if let Some((_, _, w)) = &self.bars {
            if let Some(b) = w.get(worker) {
                b.reset();
                b.set_message(name.to_string());
            }
        }
    }

    pub fn bytes(&self, worker: usize, n: u64) {
        if let Some((_, overall, w)) = &self.bars {
            overall.inc(n);
            if let Some(b) = w.get(worker) {
                b.inc(n);
            }
        }
    }

    pub fn unit_done(&self, worker: usize, done: usize, total: usize) {
        if let Some((_, overall, w)) = &self.bars {
            overall.set_message(format!("{done}/{total} units"));
            if let Some(b) = w.get(worker) {
                b.set_message("idle");
            }
        }
    }

    /// A log line: above the bars on a terminal, plain on stderr otherwise.
    pub fn line(&self, msg: &str) {
        if self.quiet {
            return;
        }
        match &self.bars {
            Some((mp, _, _)) => {
                let _ = mp.println(msg);
            }
            None => eprintln!("{msg}"),
        }
    }

    pub fn finish(&self) {
        if let Some((mp, overall, w)) = &self.bars {
            for b in w {
                b.finish_and_clear();
            }
            overall.finish_and_clear();
            let _ = mp.clear();
        }
    }
}
