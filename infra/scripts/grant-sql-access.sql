-- Makes the function app's managed identity a user of the sync database with the roles it needs.
-- Run as the server's Entra admin; sqlcmd variables: APP_IDENTITY_NAME, APP_IDENTITY_OBJECT_ID.
-- Safe to run again. WITH OBJECT_ID avoids a Microsoft Graph lookup by display name.
IF NOT EXISTS (SELECT 1 FROM sys.database_principals WHERE name = N'$(APP_IDENTITY_NAME)')
    CREATE USER [$(APP_IDENTITY_NAME)] FROM EXTERNAL PROVIDER WITH OBJECT_ID = '$(APP_IDENTITY_OBJECT_ID)';
ALTER ROLE db_datareader ADD MEMBER [$(APP_IDENTITY_NAME)];
ALTER ROLE db_datawriter ADD MEMBER [$(APP_IDENTITY_NAME)];
-- db_ddladmin lets the app apply its own migrations; drop it if migrations only run from a workstation.
ALTER ROLE db_ddladmin ADD MEMBER [$(APP_IDENTITY_NAME)];
GO
