@echo off
rem Install what audiocraft-webui needs into venv\, doing only what is missing (run.bat calls this).
rem
rem Environment:
rem   TORCH_VERSION    torch for a venv that has none yet (default: 2.13.0)
rem   TORCH_INDEX_URL  extra pip index for that torch (default: PyTorch's CUDA 12.8 wheel index when
rem                    nvidia-smi is found; without it pip installs the registry's CPU-only build)
setlocal EnableExtensions
cd /d "%~dp0"

rem Bump when the install steps change, so that existing venvs run them again.
set "SCRIPT_VERSION=1"
set "STAMP=venv\.install-stamp"
set "PIP_DISABLE_PIP_VERSION_CHECK=1"
if not defined TORCH_VERSION set "TORCH_VERSION=2.13.0"

if exist venv\Scripts\python.exe goto :check_venv
if exist venv (
  echo install.bat: error: venv exists but has no Scripts\python.exe; delete venv and run again
  exit /b 1
)
call :find_python
if errorlevel 1 goto :no_python
echo install.bat: creating venv with %PY%
%PY% -m venv venv
if errorlevel 1 (
  rmdir /s /q venv 2>nul
  echo install.bat: error: could not create venv with %PY%
  exit /b 1
)
goto :packages

:check_venv
call :python_ok venv\Scripts\python.exe
if errorlevel 1 (
  echo install.bat: error: venv does not run Python 3.10-3.12; delete venv and run again
  exit /b 1
)

:packages
rem The stamp is a copy of what the last complete install was made from; while it matches, skip pip.
>venv\.install-wanted echo install.bat %SCRIPT_VERSION%
>>venv\.install-wanted type requirements.txt
fc /b venv\.install-wanted "%STAMP%" >nul 2>&1
if not errorlevel 1 (
  del venv\.install-wanted
  echo install.bat: Python packages are up to date
  exit /b 0
)

rem torch goes on the same pip command line as the requirements, so that pip resolves against it and
rem never swaps the build: keep an installed torch exactly (CPU or CUDA), else install TORCH_VERSION.
set "TORCH_REQ="
set "INDEX_ARGS="
for /f "delims=" %%V in ('venv\Scripts\python.exe -c "import torch; print(torch.__version__)" 2^>nul') do set "TORCH_REQ=torch==%%V"
if defined TORCH_REQ (
  echo install.bat: keeping the installed %TORCH_REQ%
  goto :install
)
set "TORCH_REQ=torch==%TORCH_VERSION%"
rem The registry's Windows torch is CPU-only; the CUDA build comes from PyTorch's own wheel index.
if not defined TORCH_INDEX_URL (
  nvidia-smi -L >nul 2>&1
  if not errorlevel 1 set "TORCH_INDEX_URL=https://download.pytorch.org/whl/cu128"
)
if defined TORCH_INDEX_URL set "INDEX_ARGS=--extra-index-url %TORCH_INDEX_URL%"
echo install.bat: installing %TORCH_REQ%, a large download on first install
if defined TORCH_INDEX_URL echo install.bat: torch comes from %TORCH_INDEX_URL%

:install
echo install.bat: installing Python packages from requirements.txt
venv\Scripts\python.exe -m pip install %INDEX_ARGS% "%TORCH_REQ%" -r requirements.txt
if errorlevel 1 goto :failed
rem audiocraft 1.3.0 pins torch 2.1 and other old versions that cannot coexist with current torch;
rem requirements.txt lists what it really needs. torchaudio is only imported by audiocraft and
rem transformers; its compiled part is stubbed out (audiocraft_webui\compat.py).
echo install.bat: installing audiocraft 1.3.0 and torchaudio 2.11.0 without their dependency pins
venv\Scripts\python.exe -m pip install --no-deps audiocraft==1.3.0 torchaudio==2.11.0
if errorlevel 1 goto :failed
rem Shows whether the GPU build arrived (pip takes the CPU build if the index lacks this version) and,
rem coming before the stamp, makes a torch that cannot be imported fail this run and the next ones.
venv\Scripts\python.exe -c "import torch; print('install.bat: torch', torch.__version__, '- CUDA available:', torch.cuda.is_available())"
if errorlevel 1 goto :failed
move /y venv\.install-wanted "%STAMP%" >nul
echo install.bat: Python packages installed
exit /b 0

:failed
echo install.bat: error: the install failed (see above); fix the cause and run install.bat again
exit /b 1

:no_python
echo install.bat: error: no Python 3.10, 3.11 or 3.12 found. Install Python 3.11 with the "py"
echo launcher (the default of the Windows installer), then run again.
exit /b 1

:find_python
rem Set PY to the first of py -3.11, py -3.12, py -3.10 (the Python launcher) or python that is 3.10-3.12.
set "PY="
for %%C in ("py -3.11" "py -3.12" "py -3.10" "python") do (
  if not defined PY (
    call :python_ok %%~C
    if not errorlevel 1 set "PY=%%~C"
  )
)
if not defined PY exit /b 1
exit /b 0

:python_ok
rem Succeed when the command given as arguments runs Python 3.10, 3.11 or 3.12.
%* -c "import sys; sys.exit(not (3, 10) <= sys.version_info[:2] <= (3, 12))" >nul 2>&1
exit /b %errorlevel%
