//! Raw-bytes frames: a u32 big-endian length, then the payload.
//!
//! Requests and responses (`/v2v/request/1`) are one frame each; the direct-message stream
//! (`/v2v/direct/2`, [`crate::direct`]) is a sequence of them. Lengths above the configured limit are
//! refused before anything is buffered, so a peer cannot make us allocate by announcing a
//! huge frame; a refused or malformed frame fails only its own stream.

use std::io;

use async_trait::async_trait;
use futures::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use libp2p::{StreamProtocol, request_response};

/// Protocol of requests that expect an answer.
pub(crate) const REQUEST_PROTOCOL: StreamProtocol = StreamProtocol::new("/v2v/request/1");

/// Buffer growth cap while reading: memory follows the bytes actually received, not the
/// announced length.
const READ_CHUNK: usize = 64 * 1024;

#[derive(Debug, Clone)]
pub(crate) struct RawCodec {
    max_bytes: usize,
}

impl RawCodec {
    pub(crate) fn new(max_bytes: usize) -> Self {
        RawCodec { max_bytes }
    }
}

/// Reads one frame of at most `max_bytes`.
async fn read_frame<T>(io: &mut T, max_bytes: usize) -> io::Result<Vec<u8>>
where
    T: AsyncRead + Unpin + Send,
{
    let mut len = [0u8; 4];
    io.read_exact(&mut len).await?;
    let len = u32::from_be_bytes(len);
    let len = usize::try_from(len).map_err(|_| too_large(usize::MAX, max_bytes))?;
    if len > max_bytes {
        return Err(too_large(len, max_bytes));
    }
    read_body(io, len).await
}

/// Reads a frame's `len` bytes of payload (after its header).
pub(crate) async fn read_body<T>(io: &mut T, len: usize) -> io::Result<Vec<u8>>
where
    T: AsyncRead + Unpin + Send,
{
    let mut buf = Vec::with_capacity(len.min(READ_CHUNK));
    // `take` bounds the read to the announced length; `read_to_end` grows the buffer only
    // as data arrives.
    io.take(len as u64).read_to_end(&mut buf).await?;
    if buf.len() != len {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            format!("frame truncated: {} of {len} bytes", buf.len()),
        ));
    }
    Ok(buf)
}

/// Appends one frame to `out`; refuses a payload above `max_bytes`.
pub(crate) fn push_frame(out: &mut Vec<u8>, data: &[u8], max_bytes: usize) -> io::Result<()> {
    if data.len() > max_bytes {
        return Err(too_large(data.len(), max_bytes));
    }
    let len = u32::try_from(data.len()).map_err(|_| too_large(data.len(), max_bytes))?;
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(data);
    Ok(())
}

async fn write_frame<T>(io: &mut T, data: &[u8], max_bytes: usize) -> io::Result<()>
where
    T: AsyncWrite + Unpin + Send,
{
    let mut frame = Vec::with_capacity(data.len() + 4);
    push_frame(&mut frame, data, max_bytes)?;
    io.write_all(&frame).await?;
    io.flush().await
}

fn too_large(size: usize, max: usize) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("frame of {size} bytes exceeds the limit of {max} bytes"),
    )
}

#[async_trait]
impl request_response::Codec for RawCodec {
    type Protocol = StreamProtocol;
    type Request = Vec<u8>;
    type Response = Vec<u8>;

    async fn read_request<T>(&mut self, _: &StreamProtocol, io: &mut T) -> io::Result<Vec<u8>>
    where
        T: AsyncRead + Unpin + Send,
    {
        read_frame(io, self.max_bytes).await
    }

    async fn read_response<T>(&mut self, _: &StreamProtocol, io: &mut T) -> io::Result<Vec<u8>>
    where
        T: AsyncRead + Unpin + Send,
    {
        read_frame(io, self.max_bytes).await
    }

    async fn write_request<T>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        req: Vec<u8>,
    ) -> io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        write_frame(io, &req, self.max_bytes).await
    }

    async fn write_response<T>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        res: Vec<u8>,
    ) -> io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        write_frame(io, &res, self.max_bytes).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::io::Cursor;
    use request_response::Codec;

    fn block_on<F: std::future::Future>(f: F) -> F::Output {
        futures::executor::block_on(f)
    }

    #[test]
    fn round_trip() {
        let mut codec = RawCodec::new(16);
        let mut wire = Cursor::new(Vec::new());
        block_on(codec.write_request(&REQUEST_PROTOCOL, &mut wire, b"hello".to_vec()))
            .expect("write");
        assert_eq!(wire.get_ref()[..4], 5u32.to_be_bytes());
        let mut wire = Cursor::new(wire.into_inner());
        let got = block_on(codec.read_request(&REQUEST_PROTOCOL, &mut wire)).expect("read");
        assert_eq!(got, b"hello");
    }

    #[test]
    fn empty_payload_round_trips() {
        let mut codec = RawCodec::new(16);
        let mut wire = Cursor::new(Vec::new());
        block_on(codec.write_response(&REQUEST_PROTOCOL, &mut wire, Vec::new())).expect("write");
        let mut wire = Cursor::new(wire.into_inner());
        let got = block_on(codec.read_response(&REQUEST_PROTOCOL, &mut wire)).expect("read");
        assert!(got.is_empty());
    }

    #[test]
    fn refuses_oversized_on_write_and_read() {
        let mut codec = RawCodec::new(4);
        let mut wire = Cursor::new(Vec::new());
        let err = block_on(codec.write_request(&REQUEST_PROTOCOL, &mut wire, vec![0; 5]))
            .expect_err("too large");
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
        assert!(wire.get_ref().is_empty(), "nothing written");

        // A peer announcing 4 GiB: refused from the header alone.
        let mut wire = Cursor::new(u32::MAX.to_be_bytes().to_vec());
        let err = block_on(codec.read_request(&REQUEST_PROTOCOL, &mut wire)).expect_err("refused");
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
    }

    #[test]
    fn truncated_frames_are_errors() {
        let mut codec = RawCodec::new(16);
        let mut bytes = 10u32.to_be_bytes().to_vec();
        bytes.extend_from_slice(b"abc");
        let mut wire = Cursor::new(bytes);
        let err = block_on(codec.read_request(&REQUEST_PROTOCOL, &mut wire)).expect_err("short");
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);

        let mut wire = Cursor::new(vec![0u8, 1]);
        assert!(block_on(codec.read_request(&REQUEST_PROTOCOL, &mut wire)).is_err());
    }
}
