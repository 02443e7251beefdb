use super::*;

/// RFC 4568 §5.1's example line (AES_CM_128_HMAC_SHA1_80 with lifetime and MKI).
const RFC_EXAMPLE: &str =
    "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR|2^20|1:4";

#[test]
fn parses_the_rfc_example_and_prints_it_back() {
    let attribute = CryptoAttribute::parse(RFC_EXAMPLE).unwrap();
    assert_eq!(attribute.tag, 1);
    assert_eq!(attribute.suite(), SrtpSuite::AesCm128HmacSha1_80);
    assert_eq!(attribute.lifetime, Some(1 << 20));
    assert_eq!(attribute.mki, Mki::new(1, 4));
    assert_eq!(attribute.to_sdp_line(), RFC_EXAMPLE);
    let debug = format!("{attribute:?}");
    assert!(
        debug.contains("****") && !debug.contains("PS1uQ"),
        "{debug}"
    );
}

#[test]
fn round_trips_every_suite_with_and_without_padding() {
    for suite in SrtpSuite::PREFERENCE {
        let offer = SdesOffer::generate(&[suite]).unwrap();
        let line = offer.sdp_lines().next().unwrap();
        let parsed = CryptoAttribute::parse(&line).unwrap();
        assert_eq!(parsed, offer.attributes[0]);
        let unpadded = line.trim_end_matches('=');
        assert_eq!(
            CryptoAttribute::parse(unpadded).unwrap(),
            parsed,
            "{unpadded}"
        );
        let value_only = line.strip_prefix("a=crypto:").unwrap();
        assert_eq!(CryptoAttribute::parse(value_only).unwrap(), parsed);
    }
}

#[test]
fn zoom_style_offer_lines_parse() {
    let lines = [
        "a=crypto:1 AES_256_CM_HMAC_SHA1_80 inline:wXb5T0yKX+ICz+ndFldk4vZ+1jPEl3kHCcULAHntzkB7a6V6qGrx9uBYgJdsuA==",
        "a=crypto:2 AES_256_CM_HMAC_SHA1_32 inline:wXb5T0yKX+ICz+ndFldk4vZ+1jPEl3kHCcULAHntzkB7a6V6qGrx9uBYgJdsuA==",
        "a=crypto:3 AES_CM_128_HMAC_SHA1_80 inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR WSH=64",
        "a=crypto:4 F8_128_HMAC_SHA1_80 inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR",
        "a=crypto:5 AES_CM_128_HMAC_SHA1_32 inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR KDR=1",
    ];
    let (usable, skipped) = parse_all(lines);
    let tags: Vec<u32> = usable.iter().map(|a| a.tag).collect();
    assert_eq!(tags, [1, 2, 3]);
    assert_eq!(
        skipped,
        [
            SdesError::UnknownSuite("F8_128_HMAC_SHA1_80".into()),
            SdesError::SessionParameter("KDR=1".into()),
        ]
    );
}

#[test]
fn bad_lines_are_typed_errors() {
    let key = "PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR";
    let cases: Vec<(String, SdesError)> = vec![
        ("a=crypto:".into(), SdesError::Missing("tag")),
        (
            "a=crypto:x1 AES_CM_128_HMAC_SHA1_80".into(),
            SdesError::BadTag("x1".into()),
        ),
        (
            "a=crypto:1234567890 A".into(),
            SdesError::BadTag("1234567890".into()),
        ),
        ("a=crypto:1".into(), SdesError::Missing("suite")),
        (
            "a=crypto:1 AES_CM_128_HMAC_SHA1_80".into(),
            SdesError::Missing("key"),
        ),
        (
            format!("a=crypto:1 AES_CM_128_HMAC_SHA1_80 uri:{key}"),
            SdesError::KeyMethod("uri".into()),
        ),
        (
            format!("a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:{key};inline:{key}"),
            SdesError::SeveralKeys,
        ),
        (
            "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:!!!!".into(),
            SdesError::Base64,
        ),
        (
            format!("a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:{key}|2^99"),
            SdesError::Lifetime,
        ),
        (
            format!("a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:{key}|1:5"),
            SdesError::Mki,
        ),
        (
            format!("a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:{key}|256:1"),
            SdesError::Mki,
        ),
        (
            format!("a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:{key}|1:1|2^20"),
            SdesError::KeyParameter,
        ),
        (
            format!("a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:{key} UNENCRYPTED_SRTP"),
            SdesError::SessionParameter("UNENCRYPTED_SRTP".into()),
        ),
        ("x".repeat(MAX_LINE_LEN + 1), SdesError::TooLong),
    ];
    for (line, expected) in cases {
        assert_eq!(CryptoAttribute::parse(&line), Err(expected), "{line}");
    }
    // A 128-bit key offered under an AES-256 name is the wrong length.
    let wrong = format!("a=crypto:1 AES_256_CM_HMAC_SHA1_80 inline:{key}");
    assert!(matches!(
        CryptoAttribute::parse(&wrong),
        Err(SdesError::Key(KeyError::Length { .. }))
    ));
}

#[test]
fn non_ascii_never_panics_and_is_quoted_safely() {
    for line in [
        "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:ü€𝄞",
        "a=crypto:1 AES_ÇM_128 inline:x",
        "a=crypto:１ AES_CM_128_HMAC_SHA1_80 inline:x",
        "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR|2^2€",
        "a=crypto:1\u{a0}AES_CM_128_HMAC_SHA1_80",
    ] {
        let error = CryptoAttribute::parse(line).unwrap_err();
        assert!(error.to_string().is_ascii(), "{error}");
    }
}

#[test]
fn offer_answer_picks_the_first_offered_suite_we_support() {
    let offer = SdesOffer::generate(&SrtpSuite::PREFERENCE).unwrap();
    let lines: Vec<String> = offer.sdp_lines().collect();
    let (offered, _) = parse_all(lines.iter().map(String::as_str));
    let (answer_line, answerer) = answer(&offered, &[SrtpSuite::AesCm128HmacSha1_80]).unwrap();
    assert_eq!(answer_line.tag, 3);
    let answer_text = answer_line.to_sdp_line();
    let (answered, _) = parse_all([answer_text.as_str()]);
    let offerer = offer.accept_answer(&answered).unwrap();
    assert_eq!(offerer.suite, SrtpSuite::AesCm128HmacSha1_80);
    assert_eq!(offerer.local, answerer.remote);
    assert_eq!(offerer.remote, answerer.local);
    let (first, _) = answer(&offered, &SrtpSuite::PREFERENCE).unwrap();
    assert_eq!(first.suite(), SrtpSuite::Aes256CmHmacSha1_80);
}

#[test]
fn negotiation_failures_say_why() {
    let offer = SdesOffer::generate(&[SrtpSuite::AesCm128HmacSha1_32]).unwrap();
    assert_eq!(
        answer(&offer.attributes, &[SrtpSuite::Aes256CmHmacSha1_80])
            .unwrap_err()
            .to_string(),
        "no common crypto suite (offered: AES_CM_128_HMAC_SHA1_32)"
    );
    assert_eq!(
        offer.accept_answer(&[]),
        Err(NegotiationError::NoCryptoInAnswer)
    );
    let mut other = SdesOffer::generate(&[SrtpSuite::AesCm128HmacSha1_80]).unwrap();
    assert!(matches!(
        offer.accept_answer(&other.attributes),
        Err(NegotiationError::SuiteMismatch { tag: 1, .. })
    ));
    other.attributes[0].tag = 9;
    assert_eq!(
        offer.accept_answer(&other.attributes),
        Err(NegotiationError::UnknownTag { tag: 9 })
    );
}
