use super::*;

const FULL: &str = include_str!("../../broadcasts.d/allhands.toml");

fn errors(text: &str) -> Vec<String> {
    parse("t.toml", text)
        .expect_err("spec should be rejected")
        .0
        .iter()
        .map(|e| e.to_string())
        .collect()
}

#[test]
fn the_design_example_parses_with_every_key() {
    let spec = parse("allhands.toml", FULL).unwrap();
    assert_eq!(spec.name, "allhands");
    assert!(spec.sip.register);
    assert_eq!(
        spec.sip.password,
        Some(crate::secret::SecretSource::File(
            "/etc/sipcast/secrets/pbx-1001".into()
        ))
    );
    assert_eq!(spec.call.dtmf, "311705123#,,1234#");
    assert_eq!(spec.call.dtmf_delay, Duration::from_secs(2));
    assert_eq!(spec.rtmp.len(), 1);
    assert_eq!(spec.rtmp[0].keyframe_interval, Duration::from_secs(4));
    assert!(spec.schedule.is_some());
    assert!(spec.warnings.is_empty());
}

#[test]
fn defaults_apply_and_a_bare_callee_is_dialed_at_the_domain() {
    let spec = parse(
        "x.toml",
        "[sip]\nuser = \"a\"\ndomain = \"pbx:5070\"\n[call]\nto = \"2001\"\n[rtmp]\nurl = \"rtmp://h/live/k\"\n",
    )
    .unwrap();
    assert_eq!(spec.call.to, "sip:2001@pbx:5070");
    assert!(spec.enabled && spec.call.audio && spec.call.video);
    assert_eq!(spec.call.answer_timeout, Duration::from_secs(60));
    assert_eq!(spec.call.media_timeout, Duration::from_secs(30));
    assert_eq!(spec.sip.auth_user, "a");
    assert_eq!(spec.redial, RedialPolicy::default());
    assert_eq!(spec.rtmp[0].audio_codec, AudioCodec::Aac);
}

#[test]
fn inline_secret_is_accepted_with_a_warning_that_does_not_show_it() {
    let spec = parse(
        "x.toml",
        "[sip]\nuser = \"a\"\ndomain = \"d\"\npassword = \"canary-pw\"\n[call]\nto = \"1\"\n[rtmp]\nurl = \"rtmp://h/live/k\"\n",
    )
    .unwrap();
    assert_eq!(spec.warnings.len(), 1);
    let shown = spec.warnings[0].to_string();
    assert!(
        shown.starts_with("x.toml:4:12: sip.password is written inline"),
        "{shown}"
    );
    assert!(!shown.contains("canary") && !format!("{spec:?}").contains("canary"));
}

#[test]
fn errors_point_at_the_offending_value() {
    let text = FULL.replace("\"Europe/Berlin\"", "\"Mars/Olympus\"");
    let line = FULL
        .lines()
        .position(|l| l.contains("Europe/Berlin"))
        .unwrap()
        + 1;
    assert_eq!(
        errors(&text),
        [format!(
            "t.toml:{line}:12: unknown time zone \"Mars/Olympus\" (use an IANA name such as \"Europe/Berlin\")"
        )]
    );
}

#[test]
fn several_problems_are_all_reported_in_file_order() {
    let text = "[sip]\nuser = \"a b\"\ndomain = \"d\"\n[call]\nto = \"1\"\ndtmf = \"12x\"\n[rtmp]\nurl = \"http://h/x\"\n";
    let got = errors(text);
    assert_eq!(got.len(), 3, "{got:?}");
    assert!(
        got[0].starts_with("t.toml:2:8: sip.user must not contain ' '"),
        "{got:?}"
    );
    assert!(
        got[1].starts_with("t.toml:6:11: invalid DTMF character 'x'"),
        "{got:?}"
    );
    assert!(
        got[2].starts_with("t.toml:8:7: url: URL scheme must be rtmp://"),
        "{got:?}"
    );
}

#[test]
fn change_classification_follows_what_the_wire_needs() {
    let base = parse("a.toml", FULL).unwrap();
    let same = |from: &str, to: &str| parse("a.toml", &FULL.replace(from, to)).unwrap();
    assert_eq!(
        base.change_to(&same("# Weekly", "# A comment")),
        SpecChange::None
    );
    assert_eq!(
        base.change_to(&same("Weekly all-hands:", "Renamed:")),
        SpecChange::None
    );
    assert_eq!(
        base.change_to(&same("lead = \"1m\"", "lead = \"2m\"")),
        SpecChange::InPlace
    );
    assert_eq!(
        base.change_to(&same("enabled = true", "enabled = false")),
        SpecChange::InPlace
    );
    assert_eq!(
        base.change_to(&same(
            "keyframe_interval = \"4s\"",
            "keyframe_interval = \"2s\""
        )),
        SpecChange::Targets
    );
    assert_eq!(base.change_to(&same("1234#", "9999#")), SpecChange::Call);
    assert_eq!(
        base.change_to(&same("user = \"1001\"", "user = \"1002\"")),
        SpecChange::Call
    );
}

#[test]
fn spec_file_names_skip_leftovers() {
    for ignored in [
        "a.toml.bak",
        "a.toml~",
        ".a.toml.swp",
        ".hidden.toml",
        "a.toml.dpkg-new",
        "a.toml.rpmnew",
        "a.toml.rpmsave",
        "a.tmp",
        "..data",
        "..2026_01_01",
        "example.toml.example",
    ] {
        assert_eq!(broadcast_name(ignored), None, "{ignored}");
    }
    assert_eq!(broadcast_name("all-hands.v2.toml"), Some("all-hands.v2"));
}

#[test]
fn a_mistyped_secret_is_not_echoed_in_the_error() {
    let got = errors("[sip]\nuser = \"a\"\ndomain = \"d\"\npassword = 98765432\n");
    assert_eq!(got.len(), 1);
    assert!(
        got[0].starts_with("t.toml:4:12: invalid type: integer, expected a string"),
        "{got:?}"
    );
    assert!(!got[0].contains("98765432"));
}

#[test]
fn bytes_that_are_not_utf8_or_too_many_are_located_errors() {
    let err = |bytes: &[u8]| parse_bytes("b.toml", bytes).unwrap_err().to_string();
    assert_eq!(
        err(b"[sip]\nuser = \"caf\xe9\"\n"),
        "b.toml:2:12: not UTF-8 (byte 17)"
    );
    assert_eq!(err(b"\xff"), "b.toml:1:1: not UTF-8 (byte 0)");
    // A multi-byte character cut short at the end.
    assert_eq!(
        err("é = 1\né".as_bytes().split_last().unwrap().1),
        "b.toml:2:1: not UTF-8 (byte 7)"
    );
    let big = vec![b'#'; MAX_SPEC_BYTES + 1];
    assert_eq!(
        err(&big),
        format!("b.toml:1:1: file is larger than {MAX_SPEC_BYTES} bytes")
    );
    // Valid UTF-8 goes to the same parser as text.
    let text = "[sip]\nuser = \"a\"\n";
    assert_eq!(
        parse_bytes("b.toml", text.as_bytes()).map(|_| ()),
        parse("b.toml", text).map(|_| ())
    );
}

fn with_call(sip: &str, call: &str) -> String {
    format!(
        "[sip]\nuser = \"a\"\ndomain = \"d\"\n{sip}\n[call]\nto = \"1\"\n{call}\n[rtmp]\nurl = \"rtmp://h/live/k\"\n"
    )
}

#[test]
fn media_encryption_defaults_to_prefer_over_tls_and_off_otherwise() {
    let tls = parse("x.toml", &with_call("transport = \"tls\"", "")).unwrap();
    assert_eq!(tls.call.media_encryption, MediaEncryption::Prefer);
    let sips = parse(
        "x.toml",
        &with_call("", "").replace("to = \"1\"", "to = \"sips:1@d\""),
    )
    .unwrap();
    assert_eq!(sips.call.media_encryption, MediaEncryption::Prefer);
    let udp = parse("x.toml", &with_call("", "")).unwrap();
    assert_eq!(udp.call.media_encryption, MediaEncryption::Off);
    let required = parse(
        "x.toml",
        &with_call("transport = \"tls\"", "media_encryption = \"require\""),
    )
    .unwrap();
    assert_eq!(required.call.media_encryption, MediaEncryption::Require);
    assert!(required.warnings.is_empty());
}

#[test]
fn srtp_over_plain_signalling_is_refused_unless_accepted_and_then_warned() {
    for mode in ["require", "prefer"] {
        let text = with_call(
            "transport = \"tcp\"",
            &format!("media_encryption = \"{mode}\""),
        );
        let shown = errors(&text);
        assert_eq!(shown.len(), 1, "{shown:?}");
        assert!(
            shown[0].starts_with("t.toml:7:20: SRTP keys (SDES) travel in the SDP"),
            "{shown:?}"
        );
        assert!(
            shown[0].contains("allow_sdes_over_plain_signalling"),
            "{shown:?}"
        );
        let accepted = parse(
            "x.toml",
            &with_call(
                "transport = \"tcp\"",
                &format!("media_encryption = \"{mode}\"\nallow_sdes_over_plain_signalling = true"),
            ),
        )
        .unwrap();
        assert_eq!(accepted.warnings.len(), 1);
        assert!(
            accepted.warnings[0]
                .to_string()
                .contains("anyone on the path")
        );
    }
    let off = parse("x.toml", &with_call("", "media_encryption = \"off\"")).unwrap();
    assert!(off.warnings.is_empty());
    assert!(errors(&with_call("", "media_encryption = \"maybe\"")).len() == 1);
}
