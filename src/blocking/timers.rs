//! The adapters' clocks: keepalive pings, the idle timeout and the close
//! timeout. The core has no clock; these timers turn elapsed time into calls
//! on it (send a ping) or into a timeout error.

use std::time::{Duration, Instant};

use super::{Options, Timeout};

/// What the timers ask for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Tick {
    Nothing,
    SendPing,
    Expired(Timeout),
}

/// Deadlines of one connection.
#[derive(Clone, Debug)]
pub(crate) struct Timers {
    idle_timeout: Option<Duration>,
    ping_interval: Option<Duration>,
    ping_timeout: Duration,
    close_timeout: Duration,
    last_received: Instant,
    ping_sent: Option<Instant>,
    close_deadline: Option<Instant>,
    /// The read timeout last set on the stream (`None` until first set).
    armed: Option<Option<Duration>>,
}

/// Shortest read timeout used to wake up for the timers.
const MIN_TICK: Duration = Duration::from_millis(5);

impl Timers {
    pub(crate) fn new(options: &Options, now: Instant) -> Self {
        Self {
            idle_timeout: options.idle_timeout,
            ping_interval: options.ping_interval,
            ping_timeout: options.ping_timeout,
            close_timeout: options.close_timeout,
            last_received: now,
            ping_sent: None,
            close_deadline: None,
            armed: None,
        }
    }

    /// The time, for the calls below: the clock is only read while some
    /// deadline can be running (without idle timeout, keepalive or a close
    /// under way, nothing depends on it, and a read costs no clock reads).
    pub(crate) fn now(&self) -> Instant {
        if self.idle_timeout.is_some() || self.ping_interval.is_some() || self.close_deadline.is_some() {
            Instant::now()
        } else {
            self.last_received
        }
    }

    /// Bytes arrived: the peer is alive.
    pub(crate) fn received(&mut self, now: Instant) {
        self.last_received = now;
        self.ping_sent = None;
    }

    /// The close handshake started: from now on it has `close_timeout`.
    pub(crate) fn closing(&mut self, now: Instant) {
        if self.close_deadline.is_none() {
            self.close_deadline = Some(now + self.close_timeout);
        }
    }

    /// Checks the deadlines.
    pub(crate) fn check(&mut self, now: Instant) -> Tick {
        if self.close_deadline.is_some_and(|deadline| now >= deadline) {
            return Tick::Expired(Timeout::Close);
        }
        if self.ping_sent.is_some_and(|sent| now >= sent + self.ping_timeout) {
            return Tick::Expired(Timeout::Keepalive);
        }
        if self.idle_timeout.is_some_and(|idle| now >= self.last_received + idle) {
            return Tick::Expired(Timeout::Idle);
        }
        if let Some(interval) = self.ping_interval
            && self.ping_sent.is_none()
            && self.close_deadline.is_none()
            && now >= self.last_received + interval
        {
            self.ping_sent = Some(now);
            return Tick::SendPing;
        }
        Tick::Nothing
    }

    /// The read timeout to set on the stream before the next read, or `None`
    /// when the one already set will do: one that wakes the read no later
    /// than the nearest deadline, and not too early. A new timeout is half the
    /// time left, so reads that keep receiving (each moves the deadlines on)
    /// never need another system call to re-arm it; an idle read wakes once
    /// more, half-way, before the deadline.
    pub(crate) fn rearm(&mut self, now: Instant) -> Option<Option<Duration>> {
        let want = self.read_timeout(now);
        let keep = match (self.armed, want) {
            (Some(Some(current)), Some(want)) => current <= want && want <= current * 2,
            (Some(None), None) => true,
            _ => false,
        };
        if keep {
            return None;
        }
        let set = want.map(|want| (want / 2).max(MIN_TICK).min(want));
        self.armed = Some(set);
        Some(set)
    }

    /// Forgets the read timeout set on the stream (after setting it failed, or
    /// after something else changed it).
    pub(crate) fn disarm(&mut self) {
        self.armed = None;
    }

    /// How long a read may block before the next deadline needs checking:
    /// the time left until the nearest deadline, or `None` without timers.
    pub(crate) fn read_timeout(&self, now: Instant) -> Option<Duration> {
        let ping = match (self.ping_sent, self.ping_interval) {
            (Some(sent), _) => Some(sent + self.ping_timeout),
            (None, Some(interval)) if self.close_deadline.is_none() => Some(self.last_received + interval),
            _ => None,
        };
        let idle = self.idle_timeout.map(|idle| self.last_received + idle);
        [self.close_deadline, ping, idle]
            .into_iter()
            .flatten()
            .min()
            .map(|deadline| deadline.saturating_duration_since(now).max(MIN_TICK))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options(ping: Option<u64>, idle: Option<u64>) -> Options {
        Options {
            ping_interval: ping.map(Duration::from_secs),
            ping_timeout: Duration::from_secs(5),
            idle_timeout: idle.map(Duration::from_secs),
            close_timeout: Duration::from_secs(3),
            ..Options::default()
        }
    }

    #[test]
    fn keepalive_pings_then_expires_without_an_answer() {
        let t0 = Instant::now();
        let mut timers = Timers::new(&options(Some(10), None), t0);
        assert_eq!(timers.check(t0 + Duration::from_secs(9)), Tick::Nothing);
        assert_eq!(timers.read_timeout(t0), Some(Duration::from_secs(10)));
        assert_eq!(timers.check(t0 + Duration::from_secs(10)), Tick::SendPing);
        assert_eq!(timers.check(t0 + Duration::from_secs(11)), Tick::Nothing, "one ping at a time");
        assert_eq!(timers.check(t0 + Duration::from_secs(15)), Tick::Expired(Timeout::Keepalive));
    }

    #[test]
    fn anything_received_answers_a_ping() {
        let t0 = Instant::now();
        let mut timers = Timers::new(&options(Some(10), None), t0);
        assert_eq!(timers.check(t0 + Duration::from_secs(10)), Tick::SendPing);
        timers.received(t0 + Duration::from_secs(12));
        assert_eq!(timers.check(t0 + Duration::from_secs(16)), Tick::Nothing);
        assert_eq!(timers.check(t0 + Duration::from_secs(22)), Tick::SendPing);
    }

    #[test]
    fn the_read_timeout_is_rearmed_only_when_it_would_wake_late() {
        let t0 = Instant::now();
        let mut timers = Timers::new(&options(Some(10), None), t0);
        assert_eq!(timers.rearm(t0), Some(Some(Duration::from_secs(5))));
        // Traffic keeps moving the deadline: nothing to set.
        for ms in [1, 500, 4000, 9000] {
            let now = t0 + Duration::from_millis(ms);
            timers.received(now);
            assert_eq!(timers.rearm(now), None, "{ms}");
        }
        // Idle: the read woke at 5 s; 5 s are left, which the armed timeout fits.
        let t1 = t0 + Duration::from_secs(9);
        assert_eq!(timers.rearm(t1 + Duration::from_secs(5)), None);
        // Closer to the deadline than the armed timeout: re-armed.
        assert_eq!(timers.rearm(t1 + Duration::from_secs(8)), Some(Some(Duration::from_secs(1))));
        let mut timers = Timers::new(&options(None, None), t0);
        assert_eq!(timers.rearm(t0), Some(None));
        assert_eq!(timers.rearm(t0), None);
        timers.closing(t0);
        assert_eq!(timers.rearm(t0), Some(Some(Duration::from_millis(1500))));
    }

    #[test]
    fn idle_and_close_deadlines() {
        let t0 = Instant::now();
        let mut timers = Timers::new(&options(None, Some(30)), t0);
        assert_eq!(timers.read_timeout(t0), Some(Duration::from_secs(30)));
        assert_eq!(timers.check(t0 + Duration::from_secs(30)), Tick::Expired(Timeout::Idle));
        let mut timers = Timers::new(&options(None, None), t0);
        assert_eq!(timers.read_timeout(t0), None);
        timers.closing(t0);
        assert_eq!(timers.check(t0 + Duration::from_secs(2)), Tick::Nothing);
        assert_eq!(timers.check(t0 + Duration::from_secs(3)), Tick::Expired(Timeout::Close));
    }
}
