# fish completion for tern: put it in ~/.config/fish/completions/tern.fish
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
