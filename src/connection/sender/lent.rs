//! Payloads left where they lie instead of being copied into the output.
//!
//! The blocking adapter lends the sender memory while a call runs: the
//! caller's own payload when it sends a large message, or the payload of the
//! event just received when it echoes it from inside `read_with`. A frame
//! whose payload lies in that memory is queued as its header alone, and the
//! adapter writes the output around it and the payload itself in one
//! vectored write ([`Sender::output_parts`]):
//!
//! - *deferred*: one payload in lent memory, written before the loan ends;
//! - *held*: payloads in the receive buffer, up to [`MAX_HELD`] of them,
//!   written before the next read into that buffer. The receive buffer's
//!   epoch, noted with each, tells whether the bytes are still there.
//!
//! Nothing here dereferences an address: payloads are found again as offsets
//! into slices the caller passes, checked, so a stale loan writes nothing
//! rather than wrong bytes.

use super::Sender;
use crate::mask::extend_copied;

/// Payloads at least this large are left in lent memory rather than copied,
/// and written on their own, with what was queued before them, before the
/// loan ends: while received input waits (the sender's own payloads, and
/// reassembled messages sent back).
///
/// Smaller ones are copied into the output, where several of them go out in
/// one write: under load, a write system call per 64 KiB message cost the
/// blocking echo server about a quarter of its throughput at that size
/// against copying and writing 256 KiB at a time (see BENCHMARKS.md).
/// Payloads sent back from the receive buffer avoid both (see [`HOLD_MIN`]).
pub(crate) const DEFER_MIN: usize = 256 << 10;

/// Payloads of received messages at least this large, sent back while the
/// receive buffer still holds them (an echo), are written from there rather
/// than copied into the output: several of them, with the frames around
/// them, in one vectored write before the next read (see
/// [`Sender::lend_received`]). Below it the copy costs less than another
/// part in that write.
pub(crate) const HOLD_MIN: usize = 16 << 10;

/// At most this many frames are held at once; later ones are copied.
const MAX_HELD: usize = 32;

/// The most parts [`Sender::output_parts`] makes: the output around each held
/// frame and the deferred one, and those payloads.
pub(crate) const MAX_OUTPUT_PARTS: usize = 2 * (MAX_HELD + 1) + 1;

/// Memory lent by the adapter: the addresses `start..end`, the smallest
/// payload left there, and whether payloads found in the receive buffer are
/// held until the output is written (else the adapter writes the one
/// deferred frame before the loan ends).
#[derive(Clone, Copy, Debug)]
pub(super) struct Loan {
    start: usize,
    end: usize,
    min: usize,
    hold: bool,
}

/// A frame queued without its payload: its header is in the output buffer
/// at `header..at`, and the payload, which belongs at `at`, is the `len`
/// bytes at address `addr` of lent memory. Frames queued after it follow at
/// `at`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Deferred {
    header: usize,
    at: usize,
    addr: usize,
    len: usize,
}

/// The receive buffer as the receiving half last described it: its address,
/// its initialised length, and its epoch (which changes whenever its bytes
/// may change: a read into it, a move, a shrink).
#[derive(Clone, Copy, Debug)]
pub(crate) struct InputSpan {
    pub(crate) addr: usize,
    pub(crate) len: usize,
    pub(crate) epoch: u32,
}

/// A frame queued without its payload, which is `len` bytes at offset
/// `start` of the receive buffer as it was in `epoch`: its header is in the
/// output buffer at `header..at`, and what was queued after it follows at `at`.
#[derive(Clone, Copy, Debug)]
pub(super) struct Held {
    header: usize,
    at: usize,
    start: usize,
    len: usize,
    epoch: u32,
}

/// Where an unmasked frame's payload is left instead of being copied.
enum LentPlace {
    /// In the receive buffer, at offset `start` in `epoch`.
    Held { start: usize, epoch: u32 },
    /// In lent memory, at address `addr`.
    Deferred { addr: usize },
}

impl Sender {
    /// Lends `bytes` until [`end_loan`](Self::end_loan): one unmasked frame
    /// of at least `min` bytes whose payload lies within them is queued
    /// without copying it, and the caller writes that payload from where it
    /// lies before the loan ends.
    pub(crate) fn lend(&mut self, bytes: &[u8], min: usize) {
        self.lend_as(bytes, min, false);
    }

    /// Lends the payload of the event just received, `bytes`, until
    /// [`end_loan`](Self::end_loan). Unmasked frames of at least
    /// [`HOLD_MIN`] bytes whose payloads lie within it, in the receive
    /// buffer, are held: queued without their payloads, which stay in the
    /// receive buffer until the caller writes the whole output with
    /// [`output_parts`](Self::output_parts), before anything is read into
    /// that buffer again. One of at least [`DEFER_MIN`] bytes that lies
    /// elsewhere (a reassembled message) is deferred as with
    /// [`lend`](Self::lend), when nothing is held.
    pub(crate) fn lend_received(&mut self, bytes: &[u8]) {
        self.lend_as(bytes, HOLD_MIN, true);
    }

    fn lend_as(&mut self, bytes: &[u8], min: usize, hold: bool) {
        let start = bytes.as_ptr().addr();
        self.loan = Some(Loan { start, end: start + bytes.len(), min, hold });
    }

    /// Ends the loan; returns the frame queued without its payload, if any,
    /// which the caller must now write with [`output_parts`](Self::output_parts)
    /// and then record with [`all_output_written`](Self::all_output_written)
    /// (or, having written only what comes before its payload and the
    /// payload, [`advance_output`](Self::advance_output) past the former), or
    /// drop with [`discard_deferred`](Self::discard_deferred).
    pub(crate) fn end_loan(&mut self) -> Option<Deferred> {
        self.loan = None;
        self.deferred.take()
    }

    /// The receiving half hands out an event whose payload lies in its input
    /// buffer, described by `input`, or (`None`) one whose payload does not.
    pub(crate) fn note_input(&mut self, input: Option<InputSpan>) {
        self.input = input;
    }

    /// Whether frames are held whose payloads lie in the receive buffer.
    pub(crate) fn holds_input(&self) -> bool {
        !self.held.is_empty()
    }

    /// The whole output, in order, as parts to write with one vectored
    /// write: the queued bytes around each held frame's payload (found in
    /// `input`, the receive buffer, and its epoch) and around the deferred
    /// frame's (found in `lent`, the memory that was lent), and those
    /// payloads. Stores them in `parts` and returns how many there are;
    /// `None` if a payload is not where it should be.
    pub(crate) fn output_parts<'a>(
        &'a self,
        input: (&'a [u8], u32),
        lent: Option<(&Deferred, &'a [u8])>,
        parts: &mut [&'a [u8]; MAX_OUTPUT_PARTS],
    ) -> Option<usize> {
        let (input, epoch) = input;
        let mut count = 0;
        let mut from = self.out_start;
        let mut push = |at: usize, payload: &'a [u8]| {
            parts[count] = self.out.get(from..at)?;
            parts[count + 1] = payload;
            count += 2;
            from = at;
            Some(())
        };
        for held in &self.held {
            if held.epoch != epoch {
                return None;
            }
            push(held.at, input.get(held.start..held.start.checked_add(held.len)?)?)?;
        }
        if let Some((deferred, lent)) = lent {
            let offset = deferred.addr.checked_sub(lent.as_ptr().addr())?;
            push(deferred.at, lent.get(offset..offset.checked_add(deferred.len)?)?)?;
        }
        parts[count] = &self.out[from..];
        Some(count + 1)
    }

    /// Records that everything [`output_parts`](Self::output_parts) gave
    /// (for the held frames and the deferred one it was given) is written.
    pub(crate) fn all_output_written(&mut self) {
        self.held.clear();
        self.held_len = 0;
        self.deferred = None;
        self.advance_output(self.out.len() - self.out_start);
    }

    /// Drops a deferred frame that could not be written, and everything
    /// queued after it, so that no header goes out without its payload.
    pub(crate) fn discard_deferred(&mut self, deferred: &Deferred) {
        self.truncate_output(deferred.header);
    }

    /// Drops the held frames, whose payloads can no longer be written, and
    /// everything queued after the first of them.
    pub(crate) fn discard_held(&mut self) {
        if let Some(first) = self.held.first() {
            self.truncate_output(first.header);
        }
        self.held.clear();
        self.held_len = 0;
    }

    fn truncate_output(&mut self, len: usize) {
        self.out.truncate(len.max(self.out_start));
        if self.queued_pong_end.is_some_and(|end| end > self.out.len()) {
            self.queued_pong_end = None;
        }
        self.held.retain(|held| held.at <= self.out.len());
        self.held_len = self.held.iter().map(|held| held.len).sum();
    }

    /// Copies the held payloads (found in `input`, the receive buffer, and
    /// its epoch) into the output where they belong, so that the output no
    /// longer depends on the receive buffer: for when the halves part.
    /// Frames whose payloads are not found are dropped as by
    /// [`discard_held`](Self::discard_held).
    pub(crate) fn copy_held(&mut self, input: (&[u8], u32)) {
        let mut parts = [&[][..]; MAX_OUTPUT_PARTS];
        let Some(count) = self.output_parts(input, None, &mut parts) else {
            self.discard_held();
            return;
        };
        let mut out = Vec::with_capacity(self.buffered_len());
        for part in &parts[..count] {
            extend_copied(&mut out, part);
        }
        // The pong's end moves by the payloads inserted before it.
        let shift = |end: usize| {
            end - self.out_start + self.held.iter().filter(|held| held.at < end).map(|held| held.len).sum::<usize>()
        };
        self.queued_pong_end = self.queued_pong_end.filter(|&end| end > self.out_start).map(shift);
        self.out = out;
        self.out_start = 0;
        self.held.clear();
        self.held_len = 0;
    }

    /// Ends a loan that was never ended (its callback panicked): the frame
    /// deferred in lent memory can no longer be written, so it goes, with
    /// what was queued after it. Held frames stay: their payloads are in the
    /// receive buffer, not in the lent memory.
    pub(crate) fn drop_unfinished_loan(&mut self) {
        if let Some(deferred) = self.end_loan() {
            self.discard_deferred(&deferred);
        }
    }

    /// Queues the frame with header `head` and `payload` without its payload
    /// when the payload is to be left where it lies (see
    /// [`place_lent`](Self::place_lent)); `false` if it is to be copied.
    pub(super) fn queue_lent(&mut self, head: &[u8], payload: &[u8]) -> bool {
        let Some(place) = self.place_lent(payload) else {
            return false;
        };
        let header = self.out.len();
        self.out.extend_from_slice(head);
        let (at, len) = (self.out.len(), payload.len());
        match place {
            LentPlace::Held { start, epoch } => {
                self.held.push(Held { header, at, start, len, epoch });
                self.held_len += len;
            }
            LentPlace::Deferred { addr } => self.deferred = Some(Deferred { header, at, addr, len }),
        }
        true
    }

    /// Where the first frame queued without its payload begins in the
    /// output, if there is one: the output may be written up to there.
    pub(super) fn lent_start(&self) -> Option<usize> {
        match (self.held.first(), self.deferred) {
            (Some(held), _) => Some(held.header),
            (None, Some(deferred)) => Some(deferred.header),
            (None, None) => None,
        }
    }

    /// Bytes of the payloads queued without being copied.
    pub(super) fn lent_len(&self) -> usize {
        self.deferred.map_or(0, |deferred| deferred.len) + self.held_len
    }

    /// The first `n` bytes of the output were dropped: the frames queued
    /// without their payloads move with the rest.
    pub(super) fn shift_lent(&mut self, n: usize) {
        if let Some(deferred) = &mut self.deferred {
            deferred.header -= n;
            deferred.at -= n;
        }
        for held in &mut self.held {
            held.header -= n;
            held.at -= n;
        }
    }

    /// Whether `payload`, about to be framed, is left where it lies rather
    /// than copied, and where: see [`lend`](Self::lend) and
    /// [`lend_received`](Self::lend_received).
    fn place_lent(&self, payload: &[u8]) -> Option<LentPlace> {
        let loan = self.loan?;
        let (addr, len) = (payload.as_ptr().addr(), payload.len());
        if len < loan.min || addr < loan.start || addr + len > loan.end {
            return None;
        }
        if loan.hold {
            if let Some(input) = self.input
                && self.held.len() < MAX_HELD
                && let Some(start) = addr.checked_sub(input.addr)
                && start + len <= input.len
            {
                return Some(LentPlace::Held { start, epoch: input.epoch });
            }
            if len < DEFER_MIN || !self.held.is_empty() {
                return None;
            }
        }
        self.deferred.is_none().then_some(LentPlace::Deferred { addr })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::connection::Role;

    fn server() -> Sender {
        Sender::new(Role::Server, &Config::default(), None)
    }

    /// A server that queued the text "a", then `big` from lent memory (so
    /// deferred), then the text "b".
    fn deferred_between_two_texts(big: &[u8]) -> Sender {
        let mut sender = server();
        sender.send_text("a").unwrap();
        sender.lend(big, DEFER_MIN);
        sender.send_binary(big).unwrap();
        sender.send_text("b").unwrap();
        sender
    }

    #[test]
    fn a_lent_payload_is_not_copied_and_what_follows_it_waits() {
        let big = vec![7u8; DEFER_MIN];
        let mut sender = deferred_between_two_texts(&big);
        // Only the frames before the deferred one may be written now.
        assert_eq!(sender.output(), [0x81, 1, b'a']);
        assert_eq!(sender.buffered_len(), 3 + 10 + DEFER_MIN + 3);
        let mut taken = Vec::new();
        sender.take_output(&mut taken);
        assert_eq!(taken, [0x81, 1, b'a']);
        let deferred = sender.end_loan().expect("deferred");
        let mut parts = [&[][..]; MAX_OUTPUT_PARTS];
        assert_eq!(sender.output_parts((&[], 0), Some((&deferred, &big)), &mut parts), Some(3));
        let [before, payload, after] = [parts[0], parts[1], parts[2]];
        let mut header = vec![0x82, 127];
        header.extend_from_slice(&(DEFER_MIN as u64).to_be_bytes());
        assert_eq!(before, header);
        assert_eq!(payload.len(), DEFER_MIN);
        assert_eq!(after, [0x81, 1, b'b']);
        sender.advance_output(before.len() + after.len());
        assert!(!sender.has_output());
    }

    #[test]
    fn small_masked_or_foreign_payloads_are_copied() {
        let big = vec![7u8; DEFER_MIN];
        let other = big.clone();
        let mut sender = server();
        sender.lend(&big, DEFER_MIN);
        sender.send_binary(&big[..DEFER_MIN - 1]).unwrap();
        sender.send_binary(&other).unwrap();
        assert!(sender.end_loan().is_none());
        assert_eq!(sender.output().len(), 10 + DEFER_MIN - 1 + 10 + DEFER_MIN);
        let mut client = Sender::new(Role::Client, &Config::default(), None);
        client.lend(&big, DEFER_MIN);
        client.send_binary(&big).unwrap();
        assert!(client.end_loan().is_none());
    }

    #[test]
    fn an_unfinished_loan_drops_its_frame_and_what_followed() {
        let big = vec![7u8; DEFER_MIN];
        let mut sender = deferred_between_two_texts(&big);
        sender.drop_unfinished_loan();
        assert_eq!(sender.output(), [0x81, 1, b'a']);
        sender.send_text("c").unwrap();
        assert_eq!(sender.output(), [0x81, 1, b'a', 0x81, 1, b'c']);
    }

    /// What a client sends, as wire bytes: `messages` (text when their flag
    /// is set, else binary), and a ping with `ping` after the message at index
    /// `ping_after`.
    fn client_wire(messages: &[(bool, Vec<u8>)], ping_after: usize) -> Vec<u8> {
        let mut client = crate::Connection::new(Role::Client, Config::default());
        for (i, (text, payload)) in messages.iter().enumerate() {
            if *text {
                client.send_text(std::str::from_utf8(payload).unwrap()).unwrap();
            } else {
                client.send_binary(payload).unwrap();
            }
            if i == ping_after {
                client.ping(b"p").unwrap();
            }
        }
        let mut wire = Vec::new();
        client.take_output(&mut wire);
        wire
    }

    /// Feeds `wire` to a server whose every data event is echoed from the
    /// receive buffer (`lend_received`), the way the blocking adapter does.
    fn echo_from_input(wire: &[u8]) -> crate::Connection {
        let mut server = crate::Connection::new(Role::Server, Config::default());
        server.receive(wire);
        echo_events(&mut server, true);
        server
    }

    /// Echoes every data event `server` has ready, lending each payload
    /// first (`lend_received`) when `hold` is set, as the blocking adapter
    /// does; otherwise copying it.
    fn echo_events(server: &mut crate::Connection, hold: bool) {
        let (receiver, sender) = server.halves();
        while let Some(event) = receiver.poll_event(sender).unwrap() {
            let lent = match event {
                crate::Event::Text(text) => text.as_bytes(),
                crate::Event::Binary(data) => data,
                _ => continue,
            };
            if hold {
                sender.lend_received(lent);
            }
            match event {
                crate::Event::Text(text) => sender.send_text(text).unwrap(),
                _ => sender.send_binary(lent).unwrap(),
            }
            assert!(sender.end_loan().is_none(), "nothing below DEFER_MIN is deferred");
        }
    }

    /// Parses what a server wrote, as a client.
    fn client_reads(wire: &[u8]) -> Vec<crate::Message> {
        let mut client = crate::Connection::new(Role::Client, Config::default());
        client.receive(wire);
        let mut messages = Vec::new();
        while let Some(event) = client.poll_event().unwrap() {
            messages.push(event.to_message());
        }
        messages
    }

    /// The whole output of `server`'s sender, held payloads included, as one
    /// write would send it; `None` if a held payload is not where it was.
    fn output_with_held(server: &mut crate::Connection) -> Option<Vec<u8>> {
        let (receiver, sender) = server.halves();
        let _ = sender.output();
        let mut parts = [&[][..]; MAX_OUTPUT_PARTS];
        let count = sender.output_parts(receiver.held_input(), None, &mut parts)?;
        Some(parts[..count].concat())
    }

    fn mixed_messages() -> Vec<(bool, Vec<u8>)> {
        let bytes = |len: usize| (0..len).map(|i| (i * 7 % 251) as u8).collect::<Vec<u8>>();
        let text = "\u{e9}t\u{e9} \u{20ac} ".repeat(HOLD_MIN / 10 + 1).into_bytes();
        vec![
            (false, bytes(20_000)),
            (true, text),
            (false, bytes(100)),
            (false, bytes(HOLD_MIN - 1)),
            (false, bytes(HOLD_MIN)),
            (false, bytes(40_000)),
        ]
    }

    /// [`mixed_messages`], with a ping after the one at `ping_after`, fed
    /// to [`echo_from_input`].
    fn mixed_messages_echoed(ping_after: usize) -> (Vec<(bool, Vec<u8>)>, crate::Connection) {
        let messages = mixed_messages();
        let server = echo_from_input(&client_wire(&messages, ping_after));
        (messages, server)
    }

    fn expected_echoes(messages: &[(bool, Vec<u8>)], ping_after: usize) -> Vec<crate::Message> {
        let mut expected = Vec::new();
        for (i, (text, payload)) in messages.iter().enumerate() {
            expected.push(if *text {
                crate::Message::Text(String::from_utf8(payload.clone()).unwrap())
            } else {
                crate::Message::Binary(payload.clone())
            });
            if i == ping_after {
                expected.push(crate::Message::Pong(b"p".to_vec()));
            }
        }
        expected
    }

    #[test]
    fn echoes_held_in_the_receive_buffer_are_written_in_order_with_what_came_between() {
        let (messages, mut server) = mixed_messages_echoed(0);
        let sender = &mut server.sender;
        // The four payloads of HOLD_MIN and up stay in the receive buffer;
        // the two smaller ones, the headers and the pong are in the output.
        assert_eq!(sender.held.len(), 4);
        assert!(sender.out.len() < 2 * HOLD_MIN, "{}", sender.out.len());
        let total: usize = messages.iter().map(|(_, payload)| payload.len()).sum();
        assert!(sender.buffered_len() > total);
        // Written as they are, only the frames before the first held one go.
        assert_eq!(sender.output(), &[] as &[u8]);
        let wire = output_with_held(&mut server).expect("all in place");
        let sender = &mut server.sender;
        assert_eq!(wire.len(), sender.buffered_len());
        assert_eq!(client_reads(&wire), expected_echoes(&messages, 0));
        sender.all_output_written();
        assert!(!sender.has_output());
        assert_eq!(sender.buffered_len(), 0);
    }

    #[test]
    fn held_echoes_are_not_written_once_the_receive_buffer_may_have_changed() {
        let (_, mut server) = mixed_messages_echoed(9);
        let _ = server.read_buffer();
        assert_eq!(output_with_held(&mut server), None);
        let sender = &mut server.sender;
        // No header goes out without its payload: the first echo is held, so
        // nothing is left.
        sender.discard_held();
        assert_eq!(sender.output(), &[] as &[u8]);
        assert_eq!(sender.buffered_len(), 0);
    }

    #[test]
    fn held_echoes_are_copied_in_place_when_the_halves_part() {
        let (messages, mut server) = mixed_messages_echoed(1);
        // The pong for the ping is queued behind the second echo, a held one.
        let _ = server.output();
        let pong_end = server.sender.queued_pong_end.expect("pong queued");
        assert!(pong_end > server.sender.held[1].at);
        let (_, mut sender) = server.into_split();
        assert!(sender.held.is_empty());
        let wire = sender.output().to_vec();
        assert_eq!(client_reads(&wire), expected_echoes(&messages, 1));
        // The pong's end moved with the payloads copied in before it: until
        // the last byte of the pong is written, a newer ping waits.
        let pong_end = sender.queued_pong_end.expect("still queued");
        assert_eq!(&wire[pong_end - 3..pong_end], [0x8a, 1, b'p']);
        sender.advance_output(pong_end - 1);
        sender.queue_pong(b"q");
        assert_eq!(sender.output().len(), wire.len() - (pong_end - 1), "the newer pong waits");
        sender.advance_output(1);
        assert!(sender.output().ends_with(&[0x8a, 1, b'q']));
    }

    /// The property test needs proptest, a dev-dependency that the Miri run
    /// (`.ci/miri`, which builds the crate without them) does not have.
    #[cfg(not(miri))]
    mod holding_property {
        use super::*;

        /// One thing a client sends in [`holding_changes_no_byte_on_the_wire`].
        #[derive(Clone, Debug)]
        enum Sent {
            Binary(usize),
            Text(usize),
            /// A binary message in two fragments of these sizes.
            Fragmented(usize, usize),
            Ping,
        }

        fn sent_strategy() -> impl proptest::strategy::Strategy<Value = Sent> {
            use proptest::prelude::*;
            let size = prop_oneof![0..300usize, HOLD_MIN - 2..HOLD_MIN + 2, HOLD_MIN..70_000];
            prop_oneof![
                3 => size.clone().prop_map(Sent::Binary),
                3 => size.clone().prop_map(Sent::Text),
                1 => (size.clone(), size).prop_map(|(a, b)| Sent::Fragmented(a, b)),
                2 => Just(Sent::Ping),
            ]
        }

        fn sent_wire(sent: &[Sent]) -> Vec<u8> {
            let bytes = |len: usize, salt: usize| (0..len).map(|i| ((i + salt) * 31 % 251) as u8).collect::<Vec<u8>>();
            let mut client = crate::Connection::new(Role::Client, Config::default());
            let mut wire = Vec::new();
            for (i, item) in sent.iter().enumerate() {
                match *item {
                    Sent::Binary(len) => client.send_binary(&bytes(len, i)).unwrap(),
                    Sent::Text(len) => client.send_text(&"\u{e9}a".repeat(len / 3)).unwrap(),
                    Sent::Fragmented(a, b) => {
                        client.send_first_fragment(false, &bytes(a, i)).unwrap();
                        client.send_fragment(&bytes(b, i + 1), true).unwrap();
                    }
                    Sent::Ping => client.ping(&[i as u8]).unwrap(),
                }
                client.take_output(&mut wire);
            }
            wire
        }

        /// A server echoing every data message, fed `wire` cut at `cuts`
        /// (through `receive`, or `read_buffer`), writing all its output after
        /// each piece: from the receive buffer where it can (`hold`), or copied.
        fn echo_server_output(wire: &[u8], cuts: &[usize], via_read_buffer: bool, hold: bool) -> Vec<u8> {
            let mut server = crate::Connection::new(Role::Server, Config::default());
            let mut written = Vec::new();
            let mut from = 0;
            for &to in cuts.iter().chain(std::iter::once(&wire.len())) {
                let mut piece = &wire[from..to];
                from = to;
                if via_read_buffer {
                    while !piece.is_empty() {
                        let buf = server.read_buffer();
                        let n = buf.len().min(piece.len());
                        buf[..n].copy_from_slice(&piece[..n]);
                        server.commit_read(n);
                        piece = &piece[n..];
                    }
                } else {
                    server.receive(piece);
                }
                echo_events(&mut server, hold);
                // Twice: a pong owed for a newer ping waits until the one queued
                // before it has been written.
                for _ in 0..2 {
                    written.extend(output_with_held(&mut server).expect("held payloads in place"));
                    server.sender.all_output_written();
                }
                assert!(!server.has_output());
            }
            written
        }

        proptest::proptest! {
            #![proptest_config(proptest::test_runner::Config::with_cases(48))]

            /// Holding payloads in the receive buffer changes no byte on the
            /// wire, however the input is cut and read.
            #[test]
            fn holding_changes_no_byte_on_the_wire(
                sent in proptest::collection::vec(sent_strategy(), 1..10),
                cuts in proptest::collection::vec(proptest::prelude::any::<proptest::sample::Index>(), 0..6),
                via_read_buffer in proptest::prelude::any::<bool>(),
            ) {
                let wire = sent_wire(&sent);
                let mut cuts: Vec<usize> = cuts.iter().map(|cut| cut.index(wire.len() + 1)).collect();
                cuts.sort_unstable();
                let held = echo_server_output(&wire, &cuts, via_read_buffer, true);
                let copied = echo_server_output(&wire, &cuts, via_read_buffer, false);
                proptest::prop_assert!(held == copied, "{} bytes held, {} copied", held.len(), copied.len());
            }
        }
    }
}
