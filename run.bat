@echo off
rem Start the web UI, installing whatever is missing first. All arguments go to webui.py
rem (run.bat --help lists them).
setlocal
cd /d "%~dp0"
call install.bat
if errorlevel 1 goto :failed
venv\Scripts\python.exe webui.py %*
if errorlevel 1 goto :failed
exit /b 0

:failed
rem Keep a double-clicked window open, so that the error stays readable.
pause
exit /b 1
