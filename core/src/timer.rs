//! Names for the timers behind `poll_timeout`, so that a timer that fires too early, too
//! late or forever says which one it is.

/// Which timer [`next_timer`](crate::PairingHost::next_timer) (and `poll_timeout`, its
/// instant) is waiting for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Timer {
    /// The code expires (initiator).
    CodeExpiry,
    /// An attempt runs out: a joiner's half-finished attempt is dropped (initiator), or a
    /// peer that was sent a `Join` has not answered (joiner).
    Attempt,
    /// The local user's answer to a confirmation is due (both).
    Confirmation,
    /// The embedder's answer to `Action::Store` is due (both).
    Store,
    /// The joiner gives up searching.
    SearchEnd,
    /// The joiner repeats its DHT lookup.
    Lookup,
    /// The joiner asks a peer again that said it had no session for the code.
    Retry,
    /// The joiner resends its proof, in case the verdict was lost.
    ResendProof,
    /// The joiner stops waiting for the verdict on its proof.
    VerdictDue,
    /// A finished initiator stops answering repeats (host).
    Linger,
}
