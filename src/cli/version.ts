/** The version `lifeboat --version` prints (src/util/version.ts, where servers read it too). */
export { VERSION } from '../util/version.js';
