" Vim syntax file
" Language:    SystemTap script (filetype "systemtap")
" Maintainer:  stap_ls project
"
" What this highlights, top to bottom: comments in all three styles (#, //,
" /* */), keywords and types, probe declarations (the probe-point families
" and components between `probe` and the handler's `{`), target variables
" ($var, $$vars, $var$$), script arguments ($1, @1), the @-operators
" (@cast, @var, @entry, the statistics extractors, ...), @define macros and
" macro invocations, strings with printf format specifiers and escapes,
" numbers, the preprocessor (%( COND %? ... %: ... %) with its eight
" condition keywords), embedded C (%{ ... %}) highlighted with Vim's own C
" syntax, and errors: an unterminated string, a stray %}.

if exists('b:current_syntax')
  finish
endif

let s:cpo_save = &cpo
set cpo&vim

syn case match

" ---- embedded C: %{ ... %} through Vim's C syntax -------------------------
" syntax/c.vim refuses to load when b:current_syntax is set.
syn include @systemtapC syntax/c.vim
unlet! b:current_syntax
syn region systemtapEmbeddedC matchgroup=systemtapEmbedDelim
      \ start=/%{/ end=/%}/ keepend contains=@systemtapC
syn match systemtapStrayEmbedEnd /%}/
" c.vim's own sync (ccomment) would start C comments outside %{ %}: replace it
syn sync clear
syn sync fromstart

" ---- comments --------------------------------------------------------------
syn keyword systemtapTodo contained TODO FIXME XXX NOTE
syn match systemtapComment /#.*$/ contains=systemtapTodo,@Spell
syn match systemtapComment +//.*$+ contains=systemtapTodo,@Spell
syn region systemtapComment start=+/\*+ end=+\*/+ contains=systemtapTodo,@Spell extend
syn match systemtapShebang /\%^#!.*$/

" ---- keywords --------------------------------------------------------------
syn keyword systemtapConditional if else
syn keyword systemtapRepeat for foreach while
syn keyword systemtapStatement break continue next return delete
syn keyword systemtapException try catch
syn keyword systemtapKeywordOp in limit
syn keyword systemtapStorage global private
syn keyword systemtapType long string
syn keyword systemtapDeclaration function nextgroup=systemtapFunctionName skipwhite
syn match systemtapFunctionName /\h\w*\%(\.\h\w*\)*/ contained

" ---- probe declarations ----------------------------------------------------
" From `probe` up to the handler's `{`; covers aliases (`probe a = b {`,
" `probe a += b {`) and conditional probes (`probe x if (c) {`).
syn keyword systemtapProbeKeyword probe nextgroup=systemtapProbePoints skipwhite skipnl skipempty
syn region systemtapProbePoints contained start=/\S/ end=/\ze{/
      \ contains=systemtapProbeFamily,systemtapProbeComponent,systemtapProbeSep,
      \ systemtapProbeParams,systemtapProbeWild,systemtapProbeMark,systemtapProbeIf,
      \ systemtapComment,systemtapNumber,systemtapTargetVar,systemtapScriptArg,
      \ systemtapAtOperator,systemtapMacro,systemtapPreProc,systemtapPreCond
" The families stap knows (stap --dump-probe-types) and the script languages.
" A family starts a probe point; after a dot the same word is a component.
syn match systemtapProbeComponent contained /\h\w*/
syn match systemtapProbeFamily contained /\%([.]\)\@<!\<\%(begin\|end\|error\|never\|kernel\|kprobe\|module\|process\|procfs\|timer\|perf\|netfilter\|java\|python2\|python3\)\>/
syn match systemtapProbeSep contained /[.,]\|+\?=/
syn match systemtapProbeWild contained /\*\*\?/
syn match systemtapProbeMark contained /[?!]/
syn region systemtapProbeParams contained matchgroup=systemtapProbeParen start=/(/ end=/)/
      \ contains=systemtapString,systemtapStringError,systemtapNumber,systemtapScriptArg,systemtapMacro
syn region systemtapProbeIf contained matchgroup=systemtapConditional start=/\<if\s*(/ end=/)/
      \ contains=systemtapNumber,systemtapString,systemtapTargetVar,systemtapAtOperator,
      \ systemtapScriptArg,systemtapProbeIfParen
syn region systemtapProbeIfParen contained transparent start=/(/ end=/)/
      \ contains=systemtapNumber,systemtapString,systemtapTargetVar,systemtapAtOperator,
      \ systemtapScriptArg,systemtapProbeIfParen

" ---- variables and @-operators ---------------------------------------------
" $var, $var->field, pretty-printing $var$ / $var$$, $$vars/$$parms/...
syn match systemtapTargetVar /\$\h\w*\$\{0,2}/
syn match systemtapContextVar /\$\$\%(vars\|locals\|parms\|return\)\$\{0,2}/
syn match systemtapScriptArg /[$@]\d\+/
syn match systemtapScriptArg /[$@]#/
syn match systemtapMacro /@\h\w*/
syn match systemtapAtOperator /@\%(cast\|var\|defined\|probewrite\|entry\|perf\|const\|kregister\|uregister\|kderef\|uderef\|count\|sum\|min\|max\|avg\|variance\|hist_linear\|hist_log\)\>/
" @define NAME(PARAMS) %( BODY %): the %( opens a macro body, not a condition
syn match systemtapDefine /@define\>/ nextgroup=systemtapDefineName skipwhite
syn match systemtapDefineName /\h\w*/ contained nextgroup=systemtapDefineParams,systemtapDefineBody skipwhite
syn region systemtapDefineParams contained matchgroup=systemtapDelimiter start=/(/ end=/)/
      \ nextgroup=systemtapDefineBody skipwhite contains=systemtapDefineParam
syn match systemtapDefineParam /\h\w*/ contained
syn match systemtapDefineBody /%(/ contained

" ---- strings, format specifiers, escapes -----------------------------------
" stap accepts any escaped character (an unknown one stands for itself, as
" regular expressions for =~ rely on: "\.so")
syn match systemtapEscape contained /\\\%(\o\{1,3}\|x\x\+\|.\)/
syn match systemtapFormat contained /%[-+ #0]*\%(\d\+\|\*\)\=\%(\.\%(\d\+\|\*\)\)\=\%(ll\|l\|hh\|h\)\=[bcdiopsuxXmM]/
syn match systemtapFormat contained /%%/
syn region systemtapString start=/"/ skip=/\\\%(.\|$\)/ end=/"/
      \ contains=systemtapEscape,systemtapFormat,@Spell
" A string that ends the line without its closing quote is an error; defined
" after systemtapString so it wins where both start.
syn match systemtapStringError /"\%([^"\\]\|\\.\)*$/

" ---- numbers and operators -------------------------------------------------
syn match systemtapNumber /\<\%(0[xX]\x\+\|0\o*\|[1-9]\d*\)\>/
syn match systemtapOperator /<<<\|[-+*\/%]=\|++\|--\|&&\|||\|==\|!=\|<=\|>=\|\.=\|->/

" ---- preprocessor ----------------------------------------------------------
" %( CONDITION %? TRUE-TOKENS %: FALSE-TOKENS %)
syn region systemtapPreCond matchgroup=systemtapPreProc start=/%(/ end=/%?/
      \ contains=systemtapPreCondKeyword,systemtapString,systemtapStringError,
      \ systemtapNumber,systemtapOperator,systemtapComment,systemtapScriptArg,systemtapMacro
syn keyword systemtapPreCondKeyword contained kernel_v kernel_vr arch
      \ systemtap_v systemtap_privilege runtime guru_mode
syn match systemtapPreCondKeyword contained /\<CONFIG_\w\+\>/
syn match systemtapPreProc /%[:)]/

" ---- highlight links -------------------------------------------------------
hi def link systemtapComment        Comment
hi def link systemtapShebang        PreProc
hi def link systemtapTodo           Todo
hi def link systemtapConditional    Conditional
hi def link systemtapRepeat         Repeat
hi def link systemtapStatement      Statement
hi def link systemtapException      Exception
hi def link systemtapKeywordOp      Keyword
hi def link systemtapStorage        StorageClass
hi def link systemtapType           Type
hi def link systemtapDeclaration    Keyword
hi def link systemtapFunctionName   Function
hi def link systemtapProbeKeyword   Keyword
hi def link systemtapProbeFamily    Structure
hi def link systemtapProbeComponent Identifier
hi def link systemtapProbeSep       Delimiter
hi def link systemtapProbeParen     Delimiter
hi def link systemtapProbeWild      Special
hi def link systemtapProbeMark      Special
hi def link systemtapTargetVar      Identifier
hi def link systemtapContextVar     Special
hi def link systemtapScriptArg      Special
hi def link systemtapMacro          Macro
hi def link systemtapAtOperator     Operator
hi def link systemtapDefine         Define
hi def link systemtapDefineName     Macro
hi def link systemtapDefineParam    Identifier
hi def link systemtapDefineBody     PreProc
hi def link systemtapDelimiter      Delimiter
hi def link systemtapEscape         SpecialChar
hi def link systemtapFormat         SpecialChar
hi def link systemtapString         String
hi def link systemtapStringError    Error
hi def link systemtapStrayEmbedEnd  Error
hi def link systemtapNumber         Number
hi def link systemtapOperator       Operator
hi def link systemtapPreCond        PreCondit
hi def link systemtapPreProc        PreCondit
hi def link systemtapPreCondKeyword PreProc
hi def link systemtapEmbedDelim     PreProc

let b:current_syntax = 'systemtap'

let &cpo = s:cpo_save
unlet s:cpo_save
