//! Property tests across crates (issue 9, point 11): the stub builder never
//! panics on any bytes and always yields a stub that names the message, and the
//! link it writes is read back by the laptop's link parser as the same mailbox
//! and id (build/parse round trip); any text given as a link is an error or a
//! link, never a panic. `PROPTEST_CASES` sets the number of cases.

use proptest::prelude::*;
use satchel_api::MessageId;
use satchel_laptop::MessageLink;
use satchel_mailbox::stub::{build_stub, is_stub, message_link, stub_id};

fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000)
}

/// Addresses as the service accepts them: local@domain, no separators.
fn address() -> impl Strategy<Value = String> {
    (
        "[A-Za-z0-9._%+~!$&'*=^`{|}-]{1,20}",
        "[a-z0-9-]{1,12}(\\.[a-z0-9-]{1,8}){0,3}",
    )
        .prop_map(|(local, domain)| format!("{local}@{domain}"))
}

fn id() -> impl Strategy<Value = MessageId> {
    any::<[u8; 32]>().prop_map(MessageId)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases()))]

    #[test]
    fn stubs_of_any_bytes_name_their_message(raw in prop::collection::vec(any::<u8>(), 0..3000), a in address(), id in id()) {
        let stub = build_stub(&a, &id, &raw);
        prop_assert!(is_stub(&stub));
        prop_assert_eq!(stub_id(&stub), Some(id));
    }

    #[test]
    fn stubs_of_header_like_bytes(lines in prop::collection::vec("[A-Za-z-]{1,12}:[ -~]{0,30}|[ \t][ -~]{0,20}|From [ -~]{0,10}|", 0..30), a in address(), id in id()) {
        let raw = lines.join("\r\n").into_bytes();
        let stub = build_stub(&a, &id, &raw);
        prop_assert_eq!(stub_id(&stub), Some(id));
    }

    #[test]
    fn links_round_trip(a in address(), id in id()) {
        let link: MessageLink = message_link(&a, &id).parse().expect("the stub's link parses");
        prop_assert_eq!(&link.mailbox, &a);
        prop_assert_eq!(link.id, id);
        let again: MessageLink = link.satchel_url().parse().expect("satchel:// parses");
        prop_assert_eq!(&again, &link);
        let again: MessageLink = link.http_url(satchel_laptop::link::DEFAULT_AGENT_ADDR).parse().expect("http:// parses");
        prop_assert_eq!(&again, &link);
    }

    #[test]
    fn any_text_is_a_link_or_an_error(text in "\\PC{0,120}") {
        let _ = text.parse::<MessageLink>();
    }

    #[test]
    fn link_like_text_is_a_link_or_an_error(text in "(satchel:|http://|https://|SATCHEL://)[ -~]{0,30}(/m/)?[ -~%]{0,80}") {
        let _ = text.parse::<MessageLink>();
    }
}
