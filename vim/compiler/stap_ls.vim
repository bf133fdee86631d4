" Compiler plugin: `:make` checks the current SystemTap script with
" `stap-ls check -p2` and fills the quickfix list from its diagnostics.
"
" stap-ls prints `file:line:col: error: message [code]` (or `warning:`,
" `note:`); it also passes on stap's native format:
"   semantic error: MESSAGE: identifier 'x' at file:line:col
"           source: ...
"   parse error: MESSAGE
"           at: operator '}' at file:line:col
"        source: ...
" Override the command with g:stap_ls_command (a string, default "stap-ls").

if exists('current_compiler')
  finish
endif
let current_compiler = 'stap_ls'

if exists(':CompilerSet') != 2
  command -nargs=* CompilerSet setlocal <args>
endif

let s:cpo_save = &cpo
set cpo&vim

execute 'CompilerSet makeprg=' . escape(get(g:, 'stap_ls_command', 'stap-ls'), ' \|"')
      \ . '\ check\ -p2\ $*\ %:S'

" 1. stap-ls: file:line:col: error|warning|note: message [code]
" 2. stap native: `semantic error: MSG ... at FILE:L:C` on one line, or the
"    message line followed by an `at:`/`saw:` line carrying the position.
"    `source:` lines and the caret line under them are dropped.
CompilerSet errorformat=
      \%f:%l:%c:\ %trror:\ %m,
      \%f:%l:%c:\ %tarning:\ %m,
      \%f:%l:%c:\ %tote:\ %m,
      \%.%#%trror:\ %m\ at\ %f:%l:%c,
      \%tARNING:\ %m\ at\ %f:%l:%c,
      \%E%.%#%trror:\ %m,
      \%Z%\\s%#at:\ %.%#\ at\ %f:%l:%c,
      \%Z%\\s%#saw:\ %.%#\ at\ %f:%l:%c,
      \%Z%\\s%#at:\ %f:%l:%c,
      \%Z%\\s%#saw:\ %f:%l:%c,
      \%-G%.%#

let &cpo = s:cpo_save
unlet s:cpo_save
