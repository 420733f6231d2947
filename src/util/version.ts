/** The version `lifeboat --version` prints and every server names in its start-up log line and /healthz. */
export const VERSION = '0.1.0';
