//! Deadlines for the opening handshake (and a client's proxy exchange),
//! shared by client and server.

use std::io;
use std::time::{Duration, Instant};

use super::error::io_error;
use super::transport::is_timeout;
use super::{Error, Timeout, Transport};

/// When the handshake (or whatever `expired` names) must be over.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Deadline {
    at: Option<Instant>,
    /// The timer reported when the deadline passes.
    expired: Timeout,
}

impl Deadline {
    /// A handshake deadline.
    pub(crate) fn after(timeout: Option<Duration>) -> Self {
        Self::reported_as(timeout, Timeout::Handshake)
    }

    /// A deadline that fails with `Error::Timeout(expired)`.
    pub(crate) fn reported_as(timeout: Option<Duration>, expired: Timeout) -> Self {
        Self { at: timeout.map(|t| Instant::now() + t), expired }
    }

    /// The error once the deadline has passed.
    pub(crate) fn expired(self) -> Error {
        Error::Timeout(self.expired)
    }

    /// The time left, as a read or write timeout; fails once it has run out.
    pub(crate) fn remaining(self) -> Result<Option<Duration>, Error> {
        match self.at {
            None => Ok(None),
            Some(deadline) => {
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() { Err(self.expired()) } else { Ok(Some(left)) }
            }
        }
    }
}

/// Writes all of `bytes` before the deadline.
pub(crate) fn write_all_until<S: Transport>(
    stream: &mut S,
    mut bytes: &[u8],
    deadline: Deadline,
    write_timeout: Option<Duration>,
) -> Result<(), Error> {
    while !bytes.is_empty() {
        let timeout = match (deadline.remaining()?, write_timeout) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        stream.set_write_timeout(timeout)?;
        match stream.write(bytes) {
            Ok(0) => return Err(Error::Disconnected),
            Ok(n) => bytes = &bytes[n..],
            Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
            Err(error) if is_timeout(&error) => return Err(deadline.expired()),
            Err(error) => return Err(io_error(error)),
        }
    }
    stream.set_write_timeout(write_timeout)?;
    Ok(())
}
