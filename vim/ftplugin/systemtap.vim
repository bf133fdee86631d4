" Filetype plugin for SystemTap scripts (filetype "systemtap").
"
" Sets comment handling for the three comment styles, % pairs including the
" preprocessor's %( %? %: %) and embedded C's %{ %} (through matchit),
" 'keywordprg' that shows a tapset function's or probe alias's man page
" (`man function::NAME`, `man probe::NAME`), and the stap-ls compiler.

if exists('b:did_ftplugin')
  finish
endif
let b:did_ftplugin = 1

let s:cpo_save = &cpo
set cpo&vim

setlocal comments=s1:/*,mb:*,ex:*/,://,:#
setlocal commentstring=//\ %s
setlocal formatoptions-=t formatoptions+=croql
setlocal matchpairs=(:),{:},[:]
setlocal iskeyword=@,48-57,_
setlocal suffixesadd=.stp,.stpm
setlocal keywordprg=:SystemtapDoc

" matchit: jump between %( %? %: %) and between %{ %}
let b:match_words = '%(:%?:%\::%),%{:%}'
let b:match_skip = 's:comment\|string'

" K on a word: the tapset documentation, function first, then probe alias.
" A dotted probe name (vfs.read) is taken whole.
function! s:Doc(word) abort
  let l:word = a:word
  let l:line = getline('.')
  let l:col = col('.') - 1
  let l:start = l:col
  while l:start > 0 && l:line[l:start - 1] =~# '[A-Za-z0-9_.]'
    let l:start -= 1
  endwhile
  let l:end = l:col
  while l:end < len(l:line) && l:line[l:end] =~# '[A-Za-z0-9_.]'
    let l:end += 1
  endwhile
  let l:dotted = substitute(strpart(l:line, l:start, l:end - l:start), '^\.\+\|\.\+$', '', 'g')
  let l:pages = []
  if l:dotted =~# '\.'
    call add(l:pages, 'probe::' . l:dotted)
  endif
  call extend(l:pages, ['function::' . l:word, 'probe::' . l:word])
  for l:page in l:pages
    call system('man -w ' . shellescape(l:page))
    if v:shell_error == 0
      if has('nvim')
        execute 'Man ' . l:page
      else
        execute '!man ' . shellescape(l:page)
      endif
      return l:page
    endif
  endfor
  echohl WarningMsg
  echo 'No tapset documentation for ' . a:word . ' (tried ' . join(l:pages, ', ') . ')'
  echohl None
  return ''
endfunction
command! -buffer -nargs=1 SystemtapDoc call s:Doc(<q-args>)
" Used by tests and mappings: the man page name K would show.
function! SystemtapDocPage(word) abort
  for l:page in ['function::' . a:word, 'probe::' . a:word]
    call system('man -w ' . shellescape(l:page))
    if v:shell_error == 0
      return l:page
    endif
  endfor
  return ''
endfunction

compiler stap_ls

let b:undo_ftplugin = 'setlocal comments< commentstring< formatoptions< matchpairs<'
      \ . ' iskeyword< suffixesadd< keywordprg< makeprg< errorformat<'
      \ . ' | unlet! b:match_words b:match_skip'
      \ . ' | silent! delcommand -buffer SystemtapDoc'

let &cpo = s:cpo_save
unlet s:cpo_save
