//! Shows that a long tool step (terraform plan/apply, helm upgrade, a trivy
//! scan) is still running. On a terminal: a spinner with the elapsed time on
//! stderr, redrawn in place and erased when the step ends. Otherwise (CI logs):
//! a plain line every 30 seconds, so a quiet log is not mistaken for a hang.
//! The library is silent until the CLI chooses a mode.

use std::io::Write;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Off = 0,
    Lines = 1,
    Spinner = 2,
}

static MODE: AtomicU8 = AtomicU8::new(Mode::Off as u8);

/// Chosen once by the CLI: `Off` for `-q`, `Spinner` when stderr is a terminal.
pub fn set_mode(mode: Mode) {
    MODE.store(mode as u8, Ordering::Relaxed);
}

fn mode() -> Mode {
    match MODE.load(Ordering::Relaxed) {
        2 => Mode::Spinner,
        1 => Mode::Lines,
        _ => Mode::Off,
    }
}

/// Nothing is drawn for steps shorter than this: most are.
const SPINNER_AFTER: Duration = Duration::from_millis(500);
const SPINNER_EVERY: Duration = Duration::from_millis(100);
const LINE_EVERY: Duration = Duration::from_secs(30);
const FRAMES: [char; 10] = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];

/// One running step; call [`Step::tick`] while waiting, drop it when done.
pub struct Step {
    what: String,
    started: Instant,
    mode: Mode,
    last: Option<Instant>,
    frame: usize,
}

impl Step {
    pub fn start(what: &str) -> Step {
        Step {
            // Paths in a command may hold anything; the spinner prints it.
            what: crate::escape::controls(what).into_owned(),
            started: Instant::now(),
            mode: mode(),
            last: None,
            frame: 0,
        }
    }

    pub fn tick(&mut self) {
        let elapsed = self.started.elapsed();
        let (first, every) = match self.mode {
            Mode::Off => return,
            Mode::Spinner => (SPINNER_AFTER, SPINNER_EVERY),
            Mode::Lines => (LINE_EVERY, LINE_EVERY),
        };
        let due = match self.last {
            None => elapsed >= first,
            Some(at) => at.elapsed() >= every,
        };
        if !due {
            return;
        }
        self.last = Some(Instant::now());
        let mut err = std::io::stderr().lock();
        let _ = match self.mode {
            Mode::Spinner => {
                self.frame = (self.frame + 1) % FRAMES.len();
                write!(
                    err,
                    "\r\x1b[K{} {} {:.1}s",
                    FRAMES[self.frame],
                    self.what,
                    elapsed.as_secs_f64()
                )
            }
            _ => writeln!(
                err,
                "… {} still running ({}s)",
                self.what,
                elapsed.as_secs()
            ),
        };
        let _ = err.flush();
    }
}

impl Drop for Step {
    fn drop(&mut self) {
        if self.mode == Mode::Spinner && self.last.is_some() {
            let mut err = std::io::stderr().lock();
            let _ = write!(err, "\r\x1b[K");
            let _ = err.flush();
        }
    }
}
