# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_sipcast_global_optspecs
    string join \n h/help V/version
end

function __fish_sipcast_needs_command
    # Figure out if the current invocation already has a command.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_sipcast_global_optspecs) -- $cmd 2>/dev/null
    or return
    if set -q argv[1]
        # Also print the command, so this can be used to figure out what it is.
        echo $argv[1]
        return 1
    end
    return 0
end

function __fish_sipcast_using_subcommand
    set -l cmd (__fish_sipcast_needs_command)
    test -z "$cmd"
    and return 1
    contains -- $cmd[1] $argv
end

complete -c sipcast -n "__fish_sipcast_needs_command" -s h -l help -d 'Print help'
complete -c sipcast -n "__fish_sipcast_needs_command" -s V -l version -d 'Print version'
complete -c sipcast -n "__fish_sipcast_needs_command" -f -a "run" -d 'Run the daemon'
complete -c sipcast -n "__fish_sipcast_needs_command" -f -a "demo" -d 'Prove the whole chain on this machine: a built-in test callee and RTMP receiver on 127.0.0.1, the daemon dialing one and publishing to the other'
complete -c sipcast -n "__fish_sipcast_needs_command" -f -a "validate" -d 'Check spec files or directories exactly as the daemon would, offline'
complete -c sipcast -n "__fish_sipcast_needs_command" -f -a "schema" -d 'Print the JSON Schema of a spec file'
complete -c sipcast -n "__fish_sipcast_needs_command" -f -a "schedule" -d 'Print the next windows of a spec\'s schedule, from the daemon\'s own evaluator'
complete -c sipcast -n "__fish_sipcast_needs_command" -f -a "probe" -d 'Preflight one spec without streaming: secrets, schedule, the SIP side (OPTIONS, or REGISTER with the real credentials) and a publish of each RTMP stream key (unpublished at once). Prints a checklist; exit 1 on any failure'
complete -c sipcast -n "__fish_sipcast_needs_command" -f -a "status" -d 'Show what a running daemon reports, as a table'
complete -c sipcast -n "__fish_sipcast_needs_command" -f -a "completions" -d 'Print a shell completion script'
complete -c sipcast -n "__fish_sipcast_needs_command" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c sipcast -n "__fish_sipcast_using_subcommand run" -l config -d 'Daemon settings file (sipcast.toml); flags override it' -r -F
complete -c sipcast -n "__fish_sipcast_using_subcommand run" -l dir -d 'Directory of broadcast specs [default: ./broadcasts.d]' -r -F
complete -c sipcast -n "__fish_sipcast_using_subcommand run" -l api -d 'Address of the read-only status API [default: 127.0.0.1:8090]' -r
complete -c sipcast -n "__fish_sipcast_using_subcommand run" -l sip-listen -d 'Address the SIP user agent listens on [default: 0.0.0.0:5060]' -r
complete -c sipcast -n "__fish_sipcast_using_subcommand run" -l rtp-ports -d 'UDP ports for RTP/RTCP, LOW-HIGH [default: 16384-16999]' -r
complete -c sipcast -n "__fish_sipcast_using_subcommand run" -l log-format -d 'Log format [default: auto: journald under systemd, text otherwise]' -r -f -a "auto\t'journald when stderr is the journal stream systemd gave us (`$JOURNAL_STREAM`), else text'
text\t'Human-readable lines on stderr'
json\t'One JSON object per line on stderr'
journald\t'journald\'s native protocol with structured fields (fails if journald is unreachable)'"
complete -c sipcast -n "__fish_sipcast_using_subcommand run" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c sipcast -n "__fish_sipcast_using_subcommand demo" -l seconds -d 'Stream this many seconds, then hang up and print the summary (the call and its DTMF take about 3 s; 8 or more shows the whole chain)' -r
complete -c sipcast -n "__fish_sipcast_using_subcommand demo" -l out -d 'Write the recording here instead of a new temporary directory' -r -F
complete -c sipcast -n "__fish_sipcast_using_subcommand demo" -l dtmf-method -d 'How the daemon sends the DTMF digits to the callee' -r -f -a "rfc4733\t'RTP telephone-events (RFC 4733) on the audio stream'
info\t'SIP INFO requests with `application/dtmf-relay` bodies'"
complete -c sipcast -n "__fish_sipcast_using_subcommand demo" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c sipcast -n "__fish_sipcast_using_subcommand validate" -l check-secrets -d 'Also read every password/stream key file and variable the specs name'
complete -c sipcast -n "__fish_sipcast_using_subcommand validate" -s h -l help -d 'Print help'
complete -c sipcast -n "__fish_sipcast_using_subcommand schema" -s h -l help -d 'Print help'
complete -c sipcast -n "__fish_sipcast_using_subcommand schedule" -l count -r
complete -c sipcast -n "__fish_sipcast_using_subcommand schedule" -l from -d 'Evaluate from this instant (RFC 3339) instead of now' -r
complete -c sipcast -n "__fish_sipcast_using_subcommand schedule" -s h -l help -d 'Print help'
complete -c sipcast -n "__fish_sipcast_using_subcommand probe" -l timeout -d 'Bound of each network step (DNS, SIP transaction, connect, RTMP setup)' -r
complete -c sipcast -n "__fish_sipcast_using_subcommand probe" -s h -l help -d 'Print help'
complete -c sipcast -n "__fish_sipcast_using_subcommand status" -l api -d 'Base URL of the daemon\'s API' -r
complete -c sipcast -n "__fish_sipcast_using_subcommand status" -s h -l help -d 'Print help'
complete -c sipcast -n "__fish_sipcast_using_subcommand completions" -s h -l help -d 'Print help'
complete -c sipcast -n "__fish_sipcast_using_subcommand help; and not __fish_seen_subcommand_from run demo validate schema schedule probe status completions help" -f -a "run" -d 'Run the daemon'
complete -c sipcast -n "__fish_sipcast_using_subcommand help; and not __fish_seen_subcommand_from run demo validate schema schedule probe status completions help" -f -a "demo" -d 'Prove the whole chain on this machine: a built-in test callee and RTMP receiver on 127.0.0.1, the daemon dialing one and publishing to the other'
complete -c sipcast -n "__fish_sipcast_using_subcommand help; and not __fish_seen_subcommand_from run demo validate schema schedule probe status completions help" -f -a "validate" -d 'Check spec files or directories exactly as the daemon would, offline'
complete -c sipcast -n "__fish_sipcast_using_subcommand help; and not __fish_seen_subcommand_from run demo validate schema schedule probe status completions help" -f -a "schema" -d 'Print the JSON Schema of a spec file'
complete -c sipcast -n "__fish_sipcast_using_subcommand help; and not __fish_seen_subcommand_from run demo validate schema schedule probe status completions help" -f -a "schedule" -d 'Print the next windows of a spec\'s schedule, from the daemon\'s own evaluator'
complete -c sipcast -n "__fish_sipcast_using_subcommand help; and not __fish_seen_subcommand_from run demo validate schema schedule probe status completions help" -f -a "probe" -d 'Preflight one spec without streaming: secrets, schedule, the SIP side (OPTIONS, or REGISTER with the real credentials) and a publish of each RTMP stream key (unpublished at once). Prints a checklist; exit 1 on any failure'
complete -c sipcast -n "__fish_sipcast_using_subcommand help; and not __fish_seen_subcommand_from run demo validate schema schedule probe status completions help" -f -a "status" -d 'Show what a running daemon reports, as a table'
complete -c sipcast -n "__fish_sipcast_using_subcommand help; and not __fish_seen_subcommand_from run demo validate schema schedule probe status completions help" -f -a "completions" -d 'Print a shell completion script'
complete -c sipcast -n "__fish_sipcast_using_subcommand help; and not __fish_seen_subcommand_from run demo validate schema schedule probe status completions help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
