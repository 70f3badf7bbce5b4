/** Where a database URL points, for messages: host, port and database, never credentials. */
export function databaseLocation(url: string): string {
  try {
    const parsed = new URL(url);
    return `${parsed.hostname}:${parsed.port || '5432'}${parsed.pathname}`;
  } catch {
    return 'ARCHIVE_DATABASE_URL';
  }
}
