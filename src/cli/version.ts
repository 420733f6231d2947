/** The version `lifeboat --version` prints and every server names in its start-up log line. */
export const VERSION = '0.1.0';
