//! One-way direct messages over one long-lived stream per peer and direction.
//!
//! Opening a yamux stream, negotiating its protocol and waiting for an ack per message costs
//! far more than the message (about half a millisecond of CPU each, measured with 32
//! validators on two cores). Here a writer task per peer opens `/v2v/direct/2` once and
//! writes length-prefixed frames into it, coalescing whatever is queued into one write;
//! the receiver reads frames from each inbound stream in order. A write that fails drops the
//! stream (and the frames in that write); the next message opens a new one.

use std::{collections::HashMap, sync::Mutex, time::Duration};

use futures::{AsyncReadExt, AsyncWriteExt, StreamExt};
use libp2p::{PeerId, Stream, StreamProtocol};
use libp2p_stream::{Control, IncomingStreams};
use tokio::{runtime::Handle, sync::mpsc};

use crate::{
    NetworkEvent,
    codec::{push_frame, read_body},
};

pub(crate) const DIRECT_PROTOCOL: StreamProtocol = StreamProtocol::new("/v2v/direct/2");

/// Messages waiting for one peer's writer; beyond it sends are dropped (the peer is not
/// keeping up, and the node learns through its own timeouts).
pub(crate) const MAX_QUEUED: usize = 65_536;
/// One write takes queued frames up to about this many bytes.
const WRITE_BATCH_BYTES: usize = 1024 * 1024;
/// Bound on opening a stream (the peer may be gone without the connection noticing yet).
const OPEN_TIMEOUT: Duration = Duration::from_secs(10);

/// The writers, one per peer, started on first use.
pub(crate) struct Senders {
    control: Control,
    runtime: Handle,
    max_bytes: usize,
    writers: Mutex<HashMap<PeerId, mpsc::Sender<Vec<u8>>>>,
}

impl Senders {
    pub(crate) fn new(control: Control, runtime: Handle, max_bytes: usize) -> Self {
        Senders {
            control,
            runtime,
            max_bytes,
            writers: Mutex::new(HashMap::new()),
        }
    }

    fn writers(&self) -> std::sync::MutexGuard<'_, HashMap<PeerId, mpsc::Sender<Vec<u8>>>> {
        // A poisoned lock only means a panic elsewhere mid-insert; the map is still usable.
        self.writers.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Queues a message for `to`; dropped (with a warning) if its queue is full.
    pub(crate) fn send(&self, to: PeerId, payload: Vec<u8>) {
        let mut writers = self.writers();
        let writer = writers.entry(to).or_insert_with(|| {
            let (tx, rx) = mpsc::channel(MAX_QUEUED);
            let task = write_loop(self.control.clone(), to, rx, self.max_bytes);
            self.runtime.spawn(task);
            tx
        });
        match writer.try_send(payload) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(_)) => {
                tracing::warn!(peer = %to, "send queue to peer full; direct message dropped");
            }
            Err(mpsc::error::TrySendError::Closed(_)) => {
                // The writer ended (the network is stopping): forget it.
                writers.remove(&to);
            }
        }
    }

    /// Ends every writer once its queue is written (the network is stopping).
    pub(crate) fn close(&self) {
        self.writers().clear();
    }
}

async fn write_loop(
    mut control: Control,
    peer: PeerId,
    mut queue: mpsc::Receiver<Vec<u8>>,
    max_bytes: usize,
) {
    let mut stream: Option<Stream> = None;
    let mut buf = Vec::new();
    while let Some(first) = queue.recv().await {
        buf.clear();
        let mut frames = 0usize;
        let mut next = Some(first);
        while let Some(message) = next.take() {
            match push_frame(&mut buf, &message, max_bytes) {
                Ok(()) => frames += 1,
                Err(e) => tracing::debug!(peer = %peer, error = %e, "direct message dropped"),
            }
            if buf.len() < WRITE_BATCH_BYTES {
                next = queue.try_recv().ok();
            }
        }
        if frames == 0 {
            continue;
        }
        if stream.is_none() {
            match tokio::time::timeout(OPEN_TIMEOUT, control.open_stream(peer, DIRECT_PROTOCOL))
                .await
            {
                Ok(Ok(s)) => stream = Some(s),
                Ok(Err(e)) => {
                    tracing::debug!(peer = %peer, error = %e, frames, "no direct stream; messages dropped");
                    continue;
                }
                Err(_) => {
                    tracing::debug!(peer = %peer, frames, "opening the direct stream timed out; messages dropped");
                    continue;
                }
            }
        }
        if let Some(s) = stream.as_mut() {
            let written = async {
                s.write_all(&buf).await?;
                s.flush().await
            }
            .await;
            if let Err(e) = written {
                tracing::debug!(peer = %peer, error = %e, frames, "direct stream failed; messages dropped");
                stream = None;
            }
        }
    }
    if let Some(mut s) = stream {
        let _ = s.close().await;
    }
}

/// Accepts inbound direct streams and reads each in its own task until it ends.
pub(crate) async fn accept_loop(
    mut incoming: IncomingStreams,
    events: mpsc::Sender<NetworkEvent>,
    max_bytes: usize,
) {
    while let Some((peer, stream)) = incoming.next().await {
        tokio::spawn(read_loop(peer, stream, events.clone(), max_bytes));
    }
}

/// Hands each frame to the node in order. Waits when the node's queue is full: the peer's
/// writer then waits on the stream's flow control instead of the messages being lost here.
/// A frame over the limit is skipped without being buffered, so the frames after it still
/// arrive.
async fn read_loop(
    peer: PeerId,
    mut stream: Stream,
    events: mpsc::Sender<NetworkEvent>,
    max_bytes: usize,
) {
    loop {
        let mut len = [0u8; 4];
        if let Err(e) = stream.read_exact(&mut len).await {
            if e.kind() != std::io::ErrorKind::UnexpectedEof {
                tracing::debug!(peer = %peer, error = %e, "direct stream closed");
            }
            return;
        }
        let len = u64::from(u32::from_be_bytes(len));
        let read = if len > max_bytes as u64 {
            let skipped =
                futures::io::copy((&mut stream).take(len), &mut futures::io::sink()).await;
            tracing::debug!(peer = %peer, size = len, max = max_bytes, "direct message too large; skipped");
            skipped.and_then(|n| {
                if n == len {
                    Ok(None)
                } else {
                    Err(std::io::ErrorKind::UnexpectedEof.into())
                }
            })
        } else {
            read_body(&mut stream, len as usize).await.map(Some)
        };
        match read {
            Ok(Some(payload)) => {
                let event = NetworkEvent::Message {
                    from: peer,
                    payload,
                };
                if events.send(event).await.is_err() {
                    return;
                }
            }
            Ok(None) => {}
            Err(e) => {
                tracing::debug!(peer = %peer, error = %e, "direct stream broken mid-frame");
                return;
            }
        }
    }
}
