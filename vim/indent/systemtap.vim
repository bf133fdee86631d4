" Indent script for SystemTap (filetype "systemtap").
"
" Brace levels come from `{ }`, from embedded C's `%{ %}` and from the
" preprocessor's `%( %)`; `%?` and `%:` lines sit at their `%(`'s level.
" At the top level (an opener in column 0) `%{` and `%(` do not indent.
" Also handled: continuation lines (a line ending in an operator or a comma,
" or with an unclosed parenthesis, indents the next by 'shiftwidth' relative
" to where the statement began), one-line control flow (`if (c)` / `else` /
" `for`, `foreach`, `while` without braces indent only the next statement),
" `#` comment lines (indented as code, never treated as C preprocessor), and
" C preprocessor lines inside embedded C (column 0).  Lines inside block
" comments and multi-line strings keep their indent.

if exists('b:did_indent')
  finish
endif
let b:did_indent = 1

setlocal indentexpr=GetSystemtapIndent(v:lnum)
setlocal indentkeys=0{,0},0),0#,!^F,o,O,e,=%),=%:,=%?,=%},=else,=catch
setlocal nolisp nosmartindent nocindent autoindent
let b:undo_indent = 'setlocal indentexpr< indentkeys< lisp< smartindent< cindent< autoindent<'

if exists('*GetSystemtapIndent')
  finish
endif

let s:cpo_save = &cpo
set cpo&vim

" Name of the syntax item at the first non-blank of line lnum.
function! s:SynFirst(lnum) abort
  " a byte column (indent() counts screen columns, tabs included)
  let l:col = match(getline(a:lnum), '\S') + 1
  return synIDattr(synID(a:lnum, l:col, 1), 'name')
endfunction

" A line that carries no code: a comment line, or C preprocessor in %{ %}.
function! s:IsSkip(lnum) abort
  let l:line = getline(a:lnum)
  if l:line =~# '^\s*$' || l:line =~# '^\s*\%(#\|//\)'
    return 1
  endif
  let l:name = s:SynFirst(a:lnum)
  return l:name =~? 'comment' && l:line !~# '^\s*/\*.*\*/\s*\S'
endfunction

" The nearest line above lnum that carries code, or 0.
function! s:PrevCode(lnum) abort
  let l:n = prevnonblank(a:lnum - 1)
  while l:n > 0 && s:IsSkip(l:n)
    let l:n = prevnonblank(l:n - 1)
  endwhile
  return l:n
endfunction

" The code of a line without strings, character literals and comments, with
" %( and %) turned into \x01 and \x02 and %? / %: removed.
function! s:Strip(line) abort
  let l:s = substitute(a:line, '"\%([^"\\]\|\\.\)*"\=', '""', 'g')
  let l:s = substitute(l:s, '''\%([^''\\]\|\\.\)\+''', '''''', 'g')
  let l:s = substitute(l:s, '/\*.\{-}\*/', ' ', 'g')
  let l:s = substitute(l:s, '/\*.*$', '', '')
  let l:s = substitute(l:s, '\%(//\|#\).*$', '', '')
  let l:s = substitute(l:s, '%(', "\x01", 'g')
  let l:s = substitute(l:s, '%)', "\x02", 'g')
  let l:s = substitute(l:s, '%[?:]', ' ', 'g')
  return substitute(l:s, '\s\+$', '', '')
endfunction

function! s:Count(s, pat) abort
  return len(split(a:s, a:pat, 1)) - 1
endfunction

" Net parentheses and brackets opened by a line.
function! s:ParenNet(s) abort
  return s:Count(a:s, '[([]') - s:Count(a:s, '[)\]]')
endfunction

" Net brace levels a line opens, not counting closers at its start (those
" already moved the line itself out).  A leading %: / %? reopens its level.
function! s:BraceNet(line) abort
  let l:raw = a:line
  let l:s = s:Strip(l:raw)
  let l:lead = matchstr(l:s, '^\s*\%(%\=[}\x02]\s*\)*')
  let l:rest = strpart(l:s, len(l:lead))
  let l:net = s:Count(l:rest, "[{\x01]") - s:Count(l:rest, "[}\x02]")
  if l:raw =~# '^\s*%[:?]'
    let l:net += 1
  endif
  return l:net
endfunction

" Does the statement go on after this line?
function! s:Continues(lnum) abort
  let l:s = s:Strip(getline(a:lnum))
  if l:s =~# '[{}\x01\x02]\s*$' || l:s =~# ';\s*$'
    return 0
  endif
  if s:ParenNet(l:s) > 0
    return 1
  endif
  if l:s =~# '\%(++\|--\)$'
    return 0
  endif
  return l:s =~# '\%([-+*/%&|^=<>:,.~]\|\<in\)$'
endfunction

" A control-flow header whose body is the next statement (no brace).
function! s:IsBodyless(lnum) abort
  let l:s = s:Strip(getline(a:lnum))
  if l:s =~# '[{;]\s*$'
    return 0
  endif
  if l:s =~# '^\s*}\=\s*\<\%(else\|try\|catch\)\>\s*$'
    return 1
  endif
  if l:s =~# '^\s*}\=\s*\%(else\s\+\)\=\<\%(if\|while\|for\|foreach\|catch\)\>\s*('
    " the header's parentheses must close on this line, with nothing after
    let l:head = matchstr(l:s, '(.*$')
    return s:ParenNet(l:head) == 0 && l:s =~# ')\s*$'
  endif
  return 0
endfunction

" First line of the statement that contains lnum.
function! s:StmtStart(lnum) abort
  let l:n = a:lnum
  let l:p = s:PrevCode(l:n)
  while l:p > 0 && s:Continues(l:p)
    let l:n = l:p
    let l:p = s:PrevCode(l:n)
  endwhile
  return l:n
endfunction

function! GetSystemtapIndent(lnum) abort
  let l:line = getline(a:lnum)
  let l:name = s:SynFirst(a:lnum)
  " inside a block comment or a string continued with a backslash
  if l:line !~# '^\s*\%(/\*\|//\|#\)' && l:name =~? 'comment'
    " ` * text` under a `/*`: one column right of the opener
    let l:o = a:lnum - 1
    while l:o > 0 && getline(l:o) !~# '/\*'
      let l:o -= 1
    endwhile
    return l:line =~# '^\s*\*' && l:o > 0 ? indent(l:o) + 1 : -1
  endif
  if l:name =~? 'string' && getline(a:lnum - 1) =~# '\\$'
    return -1
  endif
  " C preprocessor inside embedded C
  if l:line =~# '^\s*#' && l:name =~# '^c\u'
    return 0
  endif
  let l:p = s:PrevCode(a:lnum)
  if l:p == 0
    return 0
  endif
  let l:sw = shiftwidth()
  " `{` on its own line after a header lines up with the header
  if l:line =~# '^\s*{' && s:IsBodyless(l:p)
    return indent(l:p)
  endif
  let l:start = s:StmtStart(l:p)
  let l:net = s:BraceNet(getline(l:p))
  let l:ind = indent(l:start)
  " at the top level (column 0), %{ %} and %( %? %: %) keep their contents
  " flush left, as the tapset library writes them
  if l:net > 0 && getline(l:p) =~# '^%[{(:?]'
    let l:net -= 1
  endif
  if l:net != 0
    let l:ind += l:net * l:sw
  elseif s:Continues(l:p)
    let l:ind += l:sw
  elseif s:IsBodyless(l:p)
    let l:ind = indent(l:p) + l:sw
  else
    " after the body of bodyless headers, go back to the outermost header
    let l:h = s:PrevCode(l:start)
    while l:h > 0 && s:IsBodyless(l:h)
      let l:ind = indent(l:h)
      if getline(l:h) =~# '^\s*}'
        break
      endif
      let l:h = s:PrevCode(l:h)
    endwhile
  endif
  " closers and preprocessor branches at the start of this line
  let l:s = s:Strip(l:line)
  let l:lead = matchstr(l:s, '^\s*\%(%\=[}\x02]\s*\)*')
  let l:ind -= s:Count(l:lead, "[}\x02]") * l:sw
  if l:line =~# '^\s*%[:?]'
    let l:ind -= l:sw
  endif
  return l:ind < 0 ? 0 : l:ind
endfunction

let &cpo = s:cpo_save
unlet s:cpo_save
