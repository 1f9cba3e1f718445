; Inno Setup script for WBC Desktop: installs the one-folder app (dist\wbc-desktop, built by PyInstaller).
;
;   iscc /DAppVersion=0.1.0 packaging\windows\wbc-desktop.iss     (the installers workflow passes
;                                                                   wbc_desktop.__version__)
;
; Per-user by default (no admin rights: %LOCALAPPDATA%\Programs\WBC Desktop); an administrator can choose an
; install for all users in the first dialog, or with /ALLUSERS on the command line. The uninstaller removes the
; program and keeps the user's cases and lab profiles (%LOCALAPPDATA%\WBC Desktop) unless the user says to
; delete them; a silent uninstall (/SILENT, /VERYSILENT) always keeps them.

#ifndef AppVersion
  #error Pass the version: iscc /DAppVersion=X.Y.Z packaging\windows\wbc-desktop.iss
#endif

#define AppName "WBC Desktop"
#define AppExe "wbc-desktop.exe"

[Setup]
; The AppId identifies the product for upgrades and the uninstaller: never change it.
AppId={{5B7C2E1A-3F4D-4C8E-9A6B-2D1E0F9C8A71}
AppName={#AppName}
AppVersion={#AppVersion}
AppVerName={#AppName} {#AppVersion}
AppPublisher=WBC Desktop developers
VersionInfoVersion={#AppVersion}
SourceDir=..\..
OutputDir=dist
OutputBaseFilename=wbc-desktop-{#AppVersion}-windows-x64-setup
DefaultDirName={autopf}\{#AppName}
DefaultGroupName={#AppName}
DisableProgramGroupPage=yes
PrivilegesRequired=lowest
PrivilegesRequiredOverridesAllowed=dialog commandline
ArchitecturesAllowed=x64compatible
ArchitecturesInstallIn64BitMode=x64compatible
SetupIconFile=resources\icons\wbc-desktop.ico
UninstallDisplayIcon={app}\{#AppExe}
UninstallDisplayName={#AppName} {#AppVersion}
Compression=lzma2/max
SolidCompression=yes
WizardStyle=modern
CloseApplications=yes

[Languages]
Name: "english"; MessagesFile: "compiler:Default.isl"

[Tasks]
Name: "desktopicon"; Description: "{cm:CreateDesktopIcon}"; GroupDescription: "{cm:AdditionalIcons}"; Flags: unchecked

[Files]
Source: "dist\wbc-desktop\*"; DestDir: "{app}"; Flags: ignoreversion recursesubdirs createallsubdirs

[Icons]
Name: "{autoprograms}\{#AppName}"; Filename: "{app}\{#AppExe}"
Name: "{autodesktop}\{#AppName}"; Filename: "{app}\{#AppExe}"; Tasks: desktopicon

[Run]
Filename: "{app}\{#AppExe}"; Description: "{cm:LaunchProgram,{#AppName}}"; Flags: nowait postinstall skipifsilent

[Code]
// The user's data folder: wbc_desktop.paths.user_data_dir() on Windows.
function UserDataDir(): String;
begin
  Result := ExpandConstant('{localappdata}\{#AppName}');
end;

procedure CurUninstallStepChanged(CurUninstallStep: TUninstallStep);
begin
  if (CurUninstallStep = usPostUninstall) and DirExists(UserDataDir()) and not UninstallSilent() then
  begin
    // Cases are patient records: keeping them is the default answer (No).
    if MsgBox('WBC Desktop has been removed.' #13#13
              'Also delete your cases and lab profiles in' #13 + UserDataDir() + '?' #13#13
              'They cannot be recovered afterwards. Choose No to keep them.',
              mbConfirmation, MB_YESNO or MB_DEFBUTTON2) = IDYES then
      DelTree(UserDataDir(), True, True, True);
  end;
end;
