# bash completion for pmctl, pmd and pmbroker (installed as
# share/bash-completion/completions/pmctl, pmd and pmbroker).
# Commands and options; service names from `pmctl status --json` of the
# agent the line names (or ./pmbus.cfg), read from its status snapshot:
# no request reaches the agent.

_pmctl_services()
{
    local args=() i
    for ((i = 1; i < COMP_CWORD; i++)); do
        case "${COMP_WORDS[i]}" in
            -c|--config|-s|--runtime-dir|--connect|--server-key|--key)
                args+=("${COMP_WORDS[i]}" "${COMP_WORDS[i+1]}") ;;
        esac
    done
    pmctl "${args[@]}" status --json 2>/dev/null \
        | grep -o '"name": *"[^"]*"' | sed 's/.*"\([^"]*\)"$/\1/'
}

_pmctl()
{
    local cur prev command="" i
    cur="${COMP_WORDS[COMP_CWORD]}"
    prev="${COMP_WORDS[COMP_CWORD-1]}"
    local commands="status ps start stop restart signal wait logs events up
        reload down is-running lease agents check keygen ping shutdown"
    local options="-c --config -s --runtime-dir --json --all --wait --for
        --timeout --with-dependents -f --follow -n --lines --no-color --lease
        --connect --server-key --key --agent -q --quiet --live -h --help
        --version"
    case "$prev" in
        -c|--config|--server-key|--key|keygen|check)
            COMPREPLY=($(compgen -f -- "$cur")); return ;;
        -s|--runtime-dir)
            COMPREPLY=($(compgen -d -- "$cur")); return ;;
        --wait)
            COMPREPLY=($(compgen -W "none started running stopped" -- "$cur"))
            return ;;
        --for)
            COMPREPLY=($(compgen -W "running ready stopped completed failed" \
                         -- "$cur"))
            return ;;
        --timeout|-n|--lines|--lease|--connect|--agent|lease)
            return ;;
    esac
    for ((i = 1; i < COMP_CWORD; i++)); do
        case "${COMP_WORDS[i]}" in
            -c|--config|-s|--runtime-dir|--connect|--server-key|--key|--wait|--for|--timeout|-n|--lines|--lease|--agent)
                ((i++)) ;;
            -*) ;;
            *) command="${COMP_WORDS[i]}"; break ;;
        esac
    done
    if [[ "$cur" == -* ]]; then
        COMPREPLY=($(compgen -W "$options" -- "$cur"))
    elif [[ -z "$command" ]]; then
        COMPREPLY=($(compgen -W "$commands" -- "$cur"))
    else
        case "$command" in
            status|ps|start|stop|restart|signal|wait|logs|events|up)
                COMPREPLY=($(compgen -W "$(_pmctl_services)" -- "$cur")) ;;
        esac
    fi
}

_pmd()
{
    local cur="${COMP_WORDS[COMP_CWORD]}" prev="${COMP_WORDS[COMP_CWORD-1]}"
    case "$prev" in
        -c|--config) COMPREPLY=($(compgen -f -- "$cur")); return ;;
        -s|--runtime-dir) COMPREPLY=($(compgen -d -- "$cur")); return ;;
        -l|--lease) return ;;
    esac
    local options="-c --config --check -s --runtime-dir -f --follow-logs
        -d --daemon -l --lease -v --verbose -h --help --version"
    [[ "${COMP_WORDS[0]}" == *pmbroker ]] \
        && options="-c --config --check -d --daemon -s --runtime-dir -v
            --verbose -h --help --version"
    COMPREPLY=($(compgen -W "$options" -- "$cur"))
}

complete -F _pmctl pmctl
complete -F _pmd pmd pmbroker
