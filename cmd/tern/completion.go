package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/urfave/cli/v2"
)

// Completion scripts ask the binary itself for candidates through
// urfave/cli's --generate-bash-completion flag, so they never go stale.
const bashCompletion = `# bash completion for tern: source it, or put it in /etc/bash_completion.d/tern
_tern_complete() {
  local cur words
  cur="${COMP_WORDS[COMP_CWORD]}"
  if [[ "$cur" == "-"* ]]; then
    words=$("${COMP_WORDS[@]:0:$COMP_CWORD}" "$cur" --generate-bash-completion 2>/dev/null)
  else
    words=$("${COMP_WORDS[@]:0:$COMP_CWORD}" --generate-bash-completion 2>/dev/null)
  fi
  COMPREPLY=($(compgen -W "$words" -- "$cur"))
  [[ ${#COMPREPLY[@]} -eq 0 ]] && COMPREPLY=($(compgen -f -- "$cur"))
  return 0
}
complete -o filenames -F _tern_complete tern
`

const zshCompletion = `#compdef tern
# zsh completion for tern: put it in a directory of $fpath as _tern
_tern() {
  local -a opts
  opts=("${(@f)$(${words[@]:0:#words[@]-1} --generate-bash-completion 2>/dev/null)}")
  if [[ -n "${opts[1]}" ]]; then
    _describe 'values' opts
  else
    _files
  fi
}
compdef _tern tern
`

const fishCompletion = `# fish completion for tern: put it in ~/.config/fish/completions/tern.fish
function __tern_complete
    set -l words (commandline -opc)
    set -l cur (commandline -ct)
    if string match -q -- '-*' $cur
        $words $cur --generate-bash-completion 2>/dev/null
    else
        $words --generate-bash-completion 2>/dev/null
    end
end
complete -c tern -f -a '(__tern_complete)'
`

func completionCommand() *cli.Command {
	return &cli.Command{
		Name:      "completion",
		Usage:     "print a shell completion script (bash, zsh or fish)",
		ArgsUsage: "bash|zsh|fish",
		Action: func(c *cli.Context) error {
			switch c.Args().First() {
			case "bash":
				fmt.Fprint(c.App.Writer, bashCompletion)
			case "zsh":
				fmt.Fprint(c.App.Writer, zshCompletion)
			case "fish":
				fmt.Fprint(c.App.Writer, fishCompletion)
			default:
				return usagef("usage: tern completion bash|zsh|fish")
			}
			return nil
		},
	}
}

// manCommand prints the manual page, generated from the command table
// (make man writes it to docs/tern.1).
func manCommand() *cli.Command {
	return &cli.Command{
		Name:  "man",
		Usage: "print the manual page tern(1) in roff",
		Action: func(c *cli.Context) error {
			page, err := manPage()
			if err != nil {
				return err
			}
			_, err = io.WriteString(c.App.Writer, page)
			return err
		},
	}
}

// manPage renders tern(1) from the commands, with the sections urfave/cli
// does not write: exit status and environment.
func manPage() (string, error) {
	app := newApp()
	app.Version = "" // the page does not change with each build
	page, err := app.ToManWithSection(1)
	if err != nil {
		return "", err
	}
	return page + manTail, nil
}

const manTail = `.SH EXIT STATUS
.TP
.B 0
done; the state asked about is healthy
.TP
.B 1
the request failed, or the state is unhealthy (tern status when the node is not in quorum or not serving)
.TP
.B 2
a usage mistake: an unknown command or flag, a missing or bad argument
.SH ENVIRONMENT
.TP
.B TERN_API
the node API address (--api)
.TP
.B TERN_TOKEN
the bearer token (--token)
.TP
.B TERN_CA
the CA certificate file of an https API (--ca)
`

// completeMember offers pool names, then the pool's member addresses,
// from the API (--api) when one answers within a second; flags when the
// word being completed is one.
func completeMember(c *cli.Context) { completeFromAPI(c, 2) }

// completePool offers pool names.
func completePool(c *cli.Context) { completeFromAPI(c, 1) }

func completeFromAPI(c *cli.Context, upTo int) {
	if n := len(os.Args); n > 2 && strings.HasPrefix(os.Args[n-2], "-") { // urfave/cli reads the line from os.Args too
		cli.DefaultCompleteWithFlags(c.Command)(c)
		return
	}
	if c.NArg() >= upTo {
		return
	}
	cl, err := apiClient(c)
	if err != nil {
		return
	}
	ctx, cancel := context.WithTimeout(c.Context, time.Second)
	defer cancel()
	ps, err := cl.Pools(ctx)
	if err != nil {
		return // no API reachable: nothing to offer
	}
	for _, p := range ps {
		switch {
		case c.NArg() == 0:
			fmt.Fprintln(c.App.Writer, p.Name)
		case p.Name == c.Args().First():
			for _, m := range p.Members {
				fmt.Fprintln(c.App.Writer, m.Address)
			}
		}
	}
}
