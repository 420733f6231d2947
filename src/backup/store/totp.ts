/**
 * The backup store's second-factor queries (the TOTP record of ./types.ts), over the same kysely
 * handle as ./queries.ts. The step and the recovery slots change only by compare-and-set, so a code
 * or a recovery code is accepted once however many logins present it at the same time.
 */
import { NotFoundError } from '../../errors.js';
import { EntryOps } from './entries.js';
import { affected, guarded } from './queries.js';
import { checkInt, checkMillis, checkName, checkSmallBytes } from './records.js';
import type { TotpTable } from './schema.js';
import type { BackupStoreOps, TotpRecord } from './types.js';

export type TotpMethods = 'getTotp' | 'setTotp' | 'advanceTotpStep' | 'replaceRecoverySlots';

const MAX_STEP = Number.MAX_SAFE_INTEGER;

function rowToTotp(r: TotpTable): TotpRecord {
  return {
    account: r.account,
    sealedSecret: new Uint8Array(r.sealed_secret),
    lastStep: Number(r.last_step),
    recoverySlots: new Uint8Array(r.recovery_slots),
    createdAt: Number(r.created_at),
    updatedAt: Number(r.updated_at),
  };
}

/** EntryOps with the TOTP methods; ./store.ts adds the compactions. */
export class TotpOps extends EntryOps implements Pick<BackupStoreOps, TotpMethods> {
  async getTotp(account: string): Promise<TotpRecord | undefined> {
    checkName(account, 'account');
    const row = await guarded(() => this.db.selectFrom('totp').selectAll().where('account', '=', account).executeTakeFirst());
    return row === undefined ? undefined : rowToTotp(row);
  }

  async setTotp(account: string, rec: Omit<TotpRecord, 'account'> | null): Promise<void> {
    checkName(account, 'account');
    if (rec === null) {
      await guarded(() => this.db.deleteFrom('totp').where('account', '=', account).execute());
      return;
    }
    const row = {
      account,
      sealed_secret: checkSmallBytes(rec.sealedSecret, 'sealedSecret'),
      last_step: checkInt(rec.lastStep, 'lastStep', -1, MAX_STEP),
      recovery_slots: checkSmallBytes(rec.recoverySlots, 'recoverySlots'),
      created_at: checkMillis(rec.createdAt, 'createdAt'),
      updated_at: checkMillis(rec.updatedAt, 'updatedAt'),
    };
    await this.atomic(async (db) => {
      if (!(await this.accountExists(db, account))) throw new NotFoundError(`account ${account} does not exist`, 'account_not_found');
      await db
        .insertInto('totp')
        .values(row)
        .onConflict((oc) => oc.column('account').doUpdateSet({ sealed_secret: row.sealed_secret, last_step: row.last_step, recovery_slots: row.recovery_slots, created_at: row.created_at, updated_at: row.updated_at }))
        .execute();
    });
  }

  async advanceTotpStep(account: string, step: number, now: number): Promise<boolean> {
    checkName(account, 'account');
    checkInt(step, 'step', 0, MAX_STEP);
    checkMillis(now, 'now');
    const r = await guarded(() => this.db.updateTable('totp').set({ last_step: step, updated_at: now }).where('account', '=', account).where('last_step', '<', step).executeTakeFirst());
    return affected(r.numUpdatedRows) > 0;
  }

  async replaceRecoverySlots(account: string, expected: Uint8Array, next: Uint8Array, now: number): Promise<boolean> {
    checkName(account, 'account');
    const old = checkSmallBytes(expected, 'expected');
    const slots = checkSmallBytes(next, 'next');
    checkMillis(now, 'now');
    const r = await guarded(() =>
      this.db.updateTable('totp').set({ recovery_slots: slots, updated_at: now }).where('account', '=', account).where('recovery_slots', '=', old).executeTakeFirst(),
    );
    return affected(r.numUpdatedRows) > 0;
  }
}
