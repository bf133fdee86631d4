" Filetype detection for SystemTap scripts: *.stp files, *.stpm tapset macro
" libraries, and scripts whose
" first line is a `#!... stap ...` shebang get the filetype "systemtap".
"
" Vim's own filetype.vim maps *.stp to "stp" (Stored Procedures) with :setf;
" ftdetect files are sourced after those rules, so `set filetype=` here runs
" later on the same BufRead event and overrides the "stp" choice (Neovim's
" syntax/stp.vim is then replaced by ours, since FileType fires again).
augroup filetypedetect
  autocmd! BufNewFile,BufRead *.stp,*.stpm setlocal filetype=systemtap
  " Extension-less (or otherwise undetected) scripts with a stap shebang:
  " #!/usr/bin/stap, #!/usr/bin/env stap, #! /usr/local/bin/stap -g ...
  autocmd BufNewFile,BufRead *
        \ if !did_filetype() && getline(1) =~# '^#!\s*\S*\<\%(env\s\+\)\=stap\>'
        \ |   setlocal filetype=systemtap
        \ | endif
augroup END
