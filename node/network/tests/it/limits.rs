//! Payload limits: refused on send and on receive, without hurting the connection.

use std::time::Duration;

use v2v_network::{NetworkError, NetworkEvent};

use crate::common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_messages_and_requests_are_refused() {
    bounded(async {
        // A accepts up to 4 KiB, B only 1 KiB: payloads in between pass A's own check and
        // must be refused by B's reader.
        let mut config_a = config(1, vec![entry(2, None)]);
        config_a.max_message_bytes = 4096;
        let mut a = start(config_a).await;
        let mut config_b = config(2, vec![entry(1, Some(a.addr()))]);
        config_b.max_message_bytes = 1024;
        let mut b = start(config_b).await;
        wait_connected(&mut a, &[b.id()]).await;
        wait_connected(&mut b, &[a.id()]).await;

        // Over the sender's own limit: refused before anything is sent.
        let error = a
            .handle
            .request(b.id(), vec![1; 5000])
            .await
            .expect_err("too large");
        assert!(
            matches!(
                error,
                NetworkError::TooLarge {
                    size: 5000,
                    max: 4096
                }
            ),
            "{error}"
        );
        a.handle.send(b.id(), vec![1; 5000]);

        // Over the receiver's limit: B refuses the frame.
        a.handle.send(b.id(), vec![2; 2000]);
        let error = a
            .handle
            .request(b.id(), vec![3; 2000])
            .await
            .expect_err("refused by the receiver");
        assert!(
            !matches!(error, NetworkError::Timeout),
            "refused promptly: {error}"
        );

        // B never saw any of it, and the connection still carries normal traffic.
        a.handle.send(b.id(), b"small".to_vec());
        let event = expect_event(
            &mut b.events,
            Duration::from_secs(5),
            "message or request",
            |e| {
                matches!(
                    e,
                    NetworkEvent::Message { .. } | NetworkEvent::Request { .. }
                )
            },
        )
        .await;
        assert!(
            matches!(&event, NetworkEvent::Message { payload, .. } if payload == b"small"),
            "unexpected {event:?}"
        );

        // A response over the responder's limit is not sent: the requester fails.
        let requester = a.handle.clone();
        let b_id = b.id();
        let call =
            tokio::spawn(async move { requester.request(b_id, b"big answer?".to_vec()).await });
        let event = expect_event(&mut b.events, Duration::from_secs(5), "request", |e| {
            matches!(e, NetworkEvent::Request { .. })
        })
        .await;
        let NetworkEvent::Request { respond, .. } = event else {
            unreachable!()
        };
        respond.send(vec![4; 2000]).expect("requester waiting");
        let error = call.await.expect("task").expect_err("response too large");
        assert!(
            !matches!(error, NetworkError::Timeout),
            "refused promptly: {error}"
        );

        assert_eq!(a.handle.connected_peers().await, vec![b.id()]);
    })
    .await;
}
