package main

import (
	"context"
	"fmt"
	"strings"
)

func runCompletion(ctx context.Context, env Env, args []string) error {
	if len(args) != 1 {
		return usageErrorf("completion: name a shell: bash, zsh or fish")
	}
	var names []string
	for _, c := range commands() {
		names = append(names, c.name)
	}
	words := strings.Join(names, " ")
	switch args[0] {
	case "bash":
		fmt.Fprintf(env.Stdout, `# bash completion for duosync: source <(duosync completion bash)
_duosync() {
  local cur=${COMP_WORDS[COMP_CWORD]}
  if [ "$COMP_CWORD" -eq 1 ]; then
    COMPREPLY=($(compgen -W "%s" -- "$cur"))
  elif [ "${COMP_WORDS[1]}" = emulate ] && [ "$COMP_CWORD" -eq 2 ]; then
    COMPREPLY=($(compgen -W "duo servicenow" -- "$cur"))
  elif [[ "$cur" == -* ]]; then
    COMPREPLY=($(compgen -W "$(duosync "${COMP_WORDS[1]}" --help 2>/dev/null | awk '$1 ~ /^-/ {print $1}')" -- "$cur"))
  else
    COMPREPLY=($(compgen -f -- "$cur"))
  fi
}
complete -F _duosync duosync
`, words)
	case "zsh":
		fmt.Fprintf(env.Stdout, `#compdef duosync
# zsh completion for duosync: duosync completion zsh > "${fpath[1]}/_duosync"
_duosync() {
  if (( CURRENT == 2 )); then
    compadd %s
  elif [[ $words[2] == emulate && CURRENT == 3 ]]; then
    compadd duo servicenow
  elif [[ $PREFIX == -* ]]; then
    compadd -- ${(f)"$(duosync $words[2] --help 2>/dev/null | awk '$1 ~ /^-/ {print $1}')"}
  else
    _files
  fi
}
compdef _duosync duosync
`, words)
	case "fish":
		fmt.Fprintf(env.Stdout, "# fish completion for duosync: duosync completion fish | source\n")
		for _, c := range commands() {
			fmt.Fprintf(env.Stdout, "complete -c duosync -n __fish_use_subcommand -a %s -d %q\n", c.name, c.summary)
		}
		fmt.Fprintln(env.Stdout, "complete -c duosync -n '__fish_seen_subcommand_from emulate' -a 'duo servicenow'")
	default:
		return usageErrorf("completion: unknown shell %q (bash, zsh or fish)", args[0])
	}
	return nil
}
