//! Failed-login throttling per client address (sans-IO: time is a parameter).
//!
//! OctoPrint's limits after CVE-2022-2822: at most 3 failures per minute, 5 per 10 minutes and
//! 10 per hour from one address. Only failures count. Windows slide, so a burst cannot straddle
//! a window edge. IPv6 clients are keyed by their /64, since one host usually owns the whole
//! prefix. Memory is bounded: at most 10 timestamps per address and `max_tracked` addresses.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::time::{Duration, Instant};

/// (window, failures allowed within it)
const WINDOWS: [(Duration, usize); 3] = [
    (Duration::from_secs(60), 3),
    (Duration::from_secs(600), 5),
    (Duration::from_secs(3600), 10),
];
const LONGEST: Duration = Duration::from_secs(3600);
const MOST: usize = 10;

/// Failure history of many client addresses.
#[derive(Debug)]
pub struct LoginLimiter {
    failures: HashMap<IpAddr, VecDeque<Instant>>,
    max_tracked: usize,
}

impl LoginLimiter {
    /// A limiter remembering at most `max_tracked` addresses (the oldest is forgotten first).
    pub fn new(max_tracked: usize) -> LoginLimiter {
        LoginLimiter {
            failures: HashMap::new(),
            max_tracked: max_tracked.max(1),
        }
    }

    /// `Err(wait)` when `ip` has used up a window at `now`; `wait` is how long until it frees.
    pub fn check(&self, ip: IpAddr, now: Instant) -> Result<(), Duration> {
        let Some(times) = self.failures.get(&key(ip)) else {
            return Ok(());
        };
        let mut wait = Duration::ZERO;
        for (window, allowed) in WINDOWS {
            let recent: Vec<&Instant> = times
                .iter()
                .filter(|t| now.saturating_duration_since(**t) < window)
                .collect();
            if recent.len() >= allowed {
                // The window frees when the oldest failure that still counts leaves it.
                let oldest_counted = recent[recent.len() - allowed];
                let frees_at = *oldest_counted + window;
                wait = wait.max(frees_at.saturating_duration_since(now));
            }
        }
        if wait.is_zero() {
            Ok(())
        } else {
            Err(wait.max(Duration::from_secs(1)))
        }
    }

    /// Records one failed attempt from `ip` at `now`.
    pub fn record_failure(&mut self, ip: IpAddr, now: Instant) {
        let ip = key(ip);
        if !self.failures.contains_key(&ip) && self.failures.len() >= self.max_tracked {
            self.evict(now);
        }
        let times = self.failures.entry(ip).or_default();
        times.push_back(now);
        while times.len() > MOST
            || times
                .front()
                .is_some_and(|t| now.saturating_duration_since(*t) >= LONGEST)
        {
            times.pop_front();
        }
    }

    /// Number of addresses currently remembered.
    pub fn tracked(&self) -> usize {
        self.failures.len()
    }

    fn evict(&mut self, now: Instant) {
        self.failures.retain(|_, times| {
            times
                .back()
                .is_some_and(|t| now.saturating_duration_since(*t) < LONGEST)
        });
        if self.failures.len() >= self.max_tracked {
            let stalest = self
                .failures
                .iter()
                .min_by_key(|(_, times)| times.back().copied())
                .map(|(ip, _)| *ip);
            if let Some(ip) = stalest {
                self.failures.remove(&ip);
            }
        }
    }
}

fn key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let mut segments = v6.segments();
                segments[4..].fill(0);
                IpAddr::V6(segments.into())
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 0, 1));
    const B: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 0, 2));

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    #[test]
    fn three_per_minute() {
        let t0 = Instant::now();
        let mut l = LoginLimiter::new(100);
        for i in 0..3 {
            assert!(l.check(A, t0 + secs(i)).is_ok());
            l.record_failure(A, t0 + secs(i));
        }
        let wait = l.check(A, t0 + secs(3)).unwrap_err();
        assert_eq!(wait, secs(57));
        assert!(
            l.check(B, t0 + secs(3)).is_ok(),
            "other addresses unaffected"
        );
        assert!(
            l.check(A, t0 + secs(60)).is_ok(),
            "first failure left the window"
        );
    }

    #[test]
    fn five_per_ten_minutes_and_ten_per_hour() {
        let t0 = Instant::now();
        let mut l = LoginLimiter::new(100);
        // One failure every 2 minutes never trips the minute window.
        for i in 0..5 {
            let now = t0 + secs(120 * i);
            assert!(l.check(A, now).is_ok(), "attempt {i}");
            l.record_failure(A, now);
        }
        // Failures at 0,120,240,360,480 s: the 10-minute window is full until 600 s.
        assert_eq!(l.check(A, t0 + secs(500)).unwrap_err(), secs(100));
        assert!(l.check(A, t0 + secs(600)).is_ok());

        let mut l = LoginLimiter::new(100);
        for i in 0..10 {
            let now = t0 + secs(360 * i);
            assert!(l.check(A, now).is_ok(), "attempt {i}");
            l.record_failure(A, now);
        }
        // 10 failures spread over 54 minutes: the hour window holds them until 3600 s.
        assert_eq!(l.check(A, t0 + secs(3300)).unwrap_err(), secs(300));
    }

    #[test]
    fn ipv6_is_keyed_by_prefix() {
        let t0 = Instant::now();
        let mut l = LoginLimiter::new(100);
        for i in 1..=3u16 {
            let ip = IpAddr::V6([0x2001, 0xdb8, 0, 0, 0, 0, 0, i].into());
            l.record_failure(ip, t0);
        }
        let other_host_same_prefix = IpAddr::V6([0x2001, 0xdb8, 0, 0, 9, 9, 9, 9].into());
        assert!(l.check(other_host_same_prefix, t0).is_err());
        let other_prefix = IpAddr::V6([0x2001, 0xdb8, 0, 1, 0, 0, 0, 1].into());
        assert!(l.check(other_prefix, t0).is_ok());
    }

    #[test]
    fn memory_is_bounded() {
        let t0 = Instant::now();
        let mut l = LoginLimiter::new(50);
        for i in 0..1000u32 {
            let ip = IpAddr::V4(i.into());
            for _ in 0..20 {
                l.record_failure(ip, t0 + secs(u64::from(i)));
            }
        }
        assert!(l.tracked() <= 50);
        assert!(l.failures.values().all(|t| t.len() <= MOST));
        // The most recent attacker is still remembered.
        assert!(l.check(IpAddr::V4(999u32.into()), t0 + secs(999)).is_err());
    }
}
