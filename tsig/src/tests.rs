use hickory_proto::{
    op::{Message, MessageType, OpCode, Query},
    rr::{Name, RecordType},
    serialize::binary::BinEncodable,
};

use super::*;

const NOW: u64 = 1_765_000_000;

fn key(algorithm: Algorithm) -> Key {
    Key::from_base64(
        "transfer.key.",
        algorithm,
        "c2VjcmV0LWtleS1mb3ItdGVzdHMtb25seS0xMjM0NTY=",
    )
    .expect("key")
}

fn query(id: u16) -> Vec<u8> {
    let mut message = Message::query();
    message.metadata.id = id;
    message.metadata.op_code = OpCode::Query;
    message.add_query(Query::query(
        Name::from_ascii("example.test.").expect("name"),
        RecordType::AXFR,
    ));
    message.to_bytes().expect("encode")
}

fn response_to(request: &[u8]) -> Vec<u8> {
    let mut message = Message::from_vec(request).expect("request");
    message.metadata.message_type = MessageType::Response;
    message.signature = None;
    message.metadata.id = u16::from_be_bytes([request[0], request[1]]);
    message.to_bytes().expect("encode")
}

#[test]
fn a_signed_request_verifies_and_its_chained_responses_verify_at_the_client() {
    for algorithm in Algorithm::ALL {
        let key = key(algorithm);
        let mut request = query(0x1234);
        let mut verifier = sign_request(&mut request, &key, NOW);
        let mut signer = verify_request(
            &request,
            |name| (name == key.name()).then_some(&key),
            NOW + 10,
        )
        .unwrap_or_else(|failure| panic!("{algorithm}: {failure}"));
        for n in 0u16..3 {
            // The messages of a transfer differ; their IDs do not.
            let mut response = Message::from_vec(&request).expect("request");
            response.metadata.message_type = MessageType::Response;
            response.signature = None;
            response.metadata.authoritative = n % 2 == 0;
            let mut bytes = response.to_bytes().expect("encode");
            signer.sign(&mut bytes);
            verifier
                .verify(&bytes)
                .unwrap_or_else(|error| panic!("{algorithm} message {n}: {error}"));
        }
    }
}

#[test]
fn a_response_out_of_order_or_tampered_with_does_not_verify() {
    let key = key(Algorithm::HmacSha256);
    let mut request = query(7);
    let verifier = sign_request(&mut request, &key, NOW);
    let mut signer = verify_request(&request, |_| Some(&key), NOW).expect("verified");
    let mut first = response_to(&request);
    signer.sign(&mut first);
    let mut second = Message::from_vec(&first).expect("first");
    second.signature = None;
    let mut second = second.to_bytes().expect("encode");
    signer.sign(&mut second);

    // The second message verified as if it were the first: the chain is wrong.
    assert_eq!(verifier.clone().verify(&second), Err(ResponseError::BadMac));
    // One bit changed in the first.
    let mut tampered = first.clone();
    tampered[2] ^= 0x04;
    assert_eq!(
        verifier.clone().verify(&tampered),
        Err(ResponseError::BadMac)
    );
    let mut in_order = verifier;
    assert_eq!(in_order.verify(&first), Ok(()));
    assert_eq!(in_order.verify(&second), Ok(()));
}

#[test]
fn an_unknown_key_or_another_algorithm_is_badkey() {
    let key = key(Algorithm::HmacSha256);
    let mut request = query(1);
    sign_request(&mut request, &key, NOW);
    let unknown = verify_request(&request, |_| None, NOW).expect_err("unknown key");
    assert_eq!(unknown.tsig_error(), Some(TsigError::BadKey));

    let same_name_other_algorithm = self::key(Algorithm::HmacSha512);
    let other = verify_request(&request, |_| Some(&same_name_other_algorithm), NOW)
        .expect_err("other algorithm");
    assert_eq!(other.tsig_error(), Some(TsigError::BadKey));
}

#[test]
fn a_wrong_secret_or_a_changed_message_is_badsig() {
    let key = key(Algorithm::HmacSha256);
    let wrong = Key::from_base64("transfer.key.", Algorithm::HmacSha256, "d3Jvbmc=").expect("key");
    let mut request = query(1);
    sign_request(&mut request, &key, NOW);
    let failure = verify_request(&request, |_| Some(&wrong), NOW).expect_err("wrong secret");
    assert_eq!(failure.tsig_error(), Some(TsigError::BadSig));

    let mut changed = request.clone();
    changed[3] ^= 0x01; // the RD bit... any header bit the MAC covers
    let failure = verify_request(&changed, |_| Some(&key), NOW).expect_err("changed");
    assert_eq!(failure.tsig_error(), Some(TsigError::BadSig));
}

#[test]
fn a_replay_outside_the_fudge_is_badtime_and_the_answer_is_signed_with_our_time() {
    let key = key(Algorithm::HmacSha256);
    let mut request = query(9);
    let mut verifier = sign_request(&mut request, &key, NOW);
    let later = NOW + u64::from(FUDGE) + 1;
    let failure = verify_request(&request, |_| Some(&key), later).expect_err("late");
    assert_eq!(failure.tsig_error(), Some(TsigError::BadTime));
    // Just inside the window is fine.
    assert!(verify_request(&request, |_| Some(&key), NOW + u64::from(FUDGE)).is_ok());

    let mut response = response_to(&request);
    failure.finish(&mut response);
    assert_eq!(
        verifier.verify(&response),
        Err(ResponseError::Reported(TsigError::BadTime))
    );
    let parsed = Message::from_vec(&response).expect("response parses");
    let tsig = &parsed.signature().expect("signed").data;
    assert_eq!(tsig.time, NOW, "the request's time is echoed");
    let mut ours = [0u8; 8];
    ours[2..].copy_from_slice(&tsig.other);
    assert_eq!(u64::from_be_bytes(ours), later, "our time is in Other Data");
}

#[test]
fn a_truncated_mac_is_badtrunc_and_a_garbled_record_is_malformed() {
    let key = key(Algorithm::HmacSha256);
    let mut request = query(1);
    sign_request(&mut request, &key, NOW);
    let mut message = Message::from_vec(&request).expect("parses");
    let mut signature = message.take_signature().expect("signed");
    signature.data.mac.truncate(16);
    message.set_signature(signature);
    let truncated = message.to_bytes().expect("encode");
    let failure = verify_request(&truncated, |_| Some(&key), NOW).expect_err("truncated");
    assert_eq!(failure.tsig_error(), Some(TsigError::BadTrunc));

    let garbled = &request[..request.len() - 3];
    assert_eq!(
        verify_request(garbled, |_| Some(&key), NOW),
        Err(Failure::Malformed)
    );
}

#[test]
fn badkey_answers_carry_an_unsigned_tsig_record_with_the_error() {
    let key = key(Algorithm::HmacSha256);
    let mut request = query(3);
    sign_request(&mut request, &key, NOW);
    let failure = verify_request(&request, |_| None, NOW).expect_err("unknown");
    let mut response = response_to(&request);
    failure.finish(&mut response);
    let parsed = Message::from_vec(&response).expect("response parses");
    let record = parsed.signature().expect("TSIG record");
    assert_eq!(record.name.to_string(), "transfer.key.");
    assert_eq!(record.data.error, Some(TsigError::BadKey));
    assert!(record.data.mac.is_empty());
    assert_eq!(record.data.oid, 3);
}

#[test]
fn overhead_is_the_length_a_signature_adds() {
    for algorithm in Algorithm::ALL {
        let key = key(algorithm);
        let mut request = query(5);
        sign_request(&mut request, &key, NOW);
        let mut signer = verify_request(&request, |_| Some(&key), NOW).expect("verified");
        let mut response = response_to(&request);
        let before = response.len();
        let overhead = signer.overhead();
        signer.sign(&mut response);
        assert_eq!(response.len() - before, overhead, "{algorithm}");
    }
}
