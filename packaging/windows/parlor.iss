; Inno Setup 6 script for Parlor: a per-user install that needs no administrator rights.
;
; Built by `python packaging\build.py` after PyInstaller, which passes:
;   /DAppVersion=<version from pyproject.toml>  /DSourceDir=<dist\parlor>
;   /DOutputDir=<dist>  /DIconFile=<build\parlor.ico>
; By hand: iscc /DAppVersion=0.1.0 /DSourceDir=..\..\dist\parlor /DOutputDir=..\..\dist parlor.iss

#ifndef AppVersion
  #error Pass the version: iscc /DAppVersion=X.Y.Z (build.py reads it from pyproject.toml)
#endif
#ifndef SourceDir
  #define SourceDir "..\..\dist\parlor"
#endif
#ifndef OutputDir
  #define OutputDir "..\..\dist"
#endif

[Setup]
; The AppId identifies Parlor across versions (upgrades, uninstall); never change it.
AppId={{6F3B2C8E-4A7D-4E15-9C2B-7D1E5A9F3B40}
AppName=Parlor
AppVersion={#AppVersion}
AppVerName=Parlor {#AppVersion}
AppPublisher=Parlor developers
; Per-user install: no UAC prompt; {autopf} becomes %LOCALAPPDATA%\Programs.
PrivilegesRequired=lowest
PrivilegesRequiredOverridesAllowed=dialog
DefaultDirName={autopf}\Parlor
DefaultGroupName=Parlor
DisableProgramGroupPage=yes
UninstallDisplayIcon={app}\parlor.exe
UninstallDisplayName=Parlor
OutputDir={#OutputDir}
OutputBaseFilename=Parlor-{#AppVersion}-windows-x64-setup
#ifdef IconFile
SetupIconFile={#IconFile}
#endif
Compression=lzma2/max
SolidCompression=yes
ArchitecturesAllowed=x64compatible
ArchitecturesInstallIn64BitMode=x64compatible
WizardStyle=modern
; Close a running Parlor before replacing its files.
CloseApplications=yes

[Languages]
Name: "english"; MessagesFile: "compiler:Default.isl"

[Tasks]
Name: "desktopicon"; Description: "{cm:CreateDesktopIcon}"; GroupDescription: "{cm:AdditionalIcons}"; Flags: unchecked

[Files]
Source: "{#SourceDir}\*"; DestDir: "{app}"; Flags: ignoreversion recursesubdirs createallsubdirs

[Icons]
Name: "{autoprograms}\Parlor"; Filename: "{app}\parlor.exe"
Name: "{autodesktop}\Parlor"; Filename: "{app}\parlor.exe"; Tasks: desktopicon

[Run]
Filename: "{app}\parlor.exe"; Description: "{cm:LaunchProgram,Parlor}"; Flags: nowait postinstall skipifsilent

[UninstallDelete]
; Files Python or Qt may write next to the program; the program folder goes with them.
Type: filesandordirs; Name: "{app}\_internal\__pycache__"
Type: dirifempty; Name: "{app}"

[Code]
{ Chats, characters, settings and downloaded models live in the user's data folder
  (platformdirs with appauthor=False: %LOCALAPPDATA%\Parlor, see app/core/appdata/paths.py).
  Uninstalling keeps it unless the user answers Yes; the default button is No, and a
  silent uninstall (/SILENT, /VERYSILENT) never deletes it. }
procedure CurUninstallStepChanged(CurUninstallStep: TUninstallStep);
var
  DataDir: String;
begin
  if CurUninstallStep <> usPostUninstall then
    Exit;
  DataDir := ExpandConstant('{localappdata}\Parlor');
  if UninstallSilent() or not DirExists(DataDir) then
    Exit;
  if MsgBox('Parlor is uninstalled. Also delete your chats, characters, settings and ' +
            'downloaded models in ' + DataDir + '?' + #13#10#13#10 +
            'Choose No to keep them for a later install.',
            mbConfirmation, MB_YESNO or MB_DEFBUTTON2) = IDYES then
    DelTree(DataDir, True, True, True);
end;
