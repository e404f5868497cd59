/**
 * `join --acl`: least-privilege ACL users on a box's Redis for the runtime,
 * for replication and for Sentinel, each with a password derived from
 * `MN_REDIS_PASSWORD` (HMAC-SHA256), so every box derives the same ones with
 * nothing new to distribute, and a leaked derived password does not reveal
 * the administrator's.
 *
 * @module
 */

import { createHmac } from "node:crypto";
import { Secret } from "../common/secret.ts";

/** The replication user (`masteruser` of every replica). */
export const REPLICATION_USER = "mn-replication";
/** The Sentinel user (`auth-user` of every sentinel). */
export const SENTINEL_USER = "mn-sentinel";
/** The runtime user's name unless `MN_REDIS_USERNAME` names another. */
export const DEFAULT_RUNTIME_USER = "mn-runtime";

/** One ACL user: its name, derived password and the rules after `reset on >password`. */
export interface AclUser {
  readonly name: string;
  readonly password: Secret;
  readonly rules: readonly string[];
  /** What the user is for, for the README table and messages. */
  readonly purpose: string;
}

/** The password of `user`, derived from the administrator's password. */
export function derivePassword(admin: Secret, user: string): Secret {
  return new Secret(
    createHmac("sha256", admin.reveal()).update(`mn-redis-ha acl ${user}`).digest("hex"),
  );
}

/**
 * The three users. The runtime may use its namespace's keys only, through
 * data, script and connection commands, plus what the client needs to find
 * and confirm the primary (`ROLE`, `INFO`, `WAIT`); nothing `@dangerous`
 * (no `FLUSHALL`, `CONFIG`, `KEYS`, `DEBUG`, `SHUTDOWN`). Replication and
 * Sentinel get the commands the Redis documentation lists for them.
 */
export function aclUsers(admin: Secret, runtimeUser: string, namespace: string): AclUser[] {
  return [
    {
      name: runtimeUser,
      password: derivePassword(admin, runtimeUser),
      purpose: "MirrorNeuron runtime (MN_REDIS_USERNAME)",
      rules: [
        `~${namespace}:*`,
        "resetchannels",
        "+@read",
        "+@write",
        "+@scripting",
        "+@connection",
        "+@transaction",
        "-@dangerous",
        "+info",
        "+role",
        "+wait",
        "+select",
        "+client|setname",
      ],
    },
    {
      name: REPLICATION_USER,
      password: derivePassword(admin, REPLICATION_USER),
      purpose: "replicas (masteruser)",
      rules: ["+psync", "+replconf", "+ping"],
    },
    {
      name: SENTINEL_USER,
      password: derivePassword(admin, SENTINEL_USER),
      purpose: "Sentinel (auth-user)",
      rules: [
        "allchannels",
        "+multi",
        "+slaveof",
        "+ping",
        "+exec",
        "+subscribe",
        "+config|rewrite",
        "+role",
        "+publish",
        "+info",
        "+client|setname",
        "+client|kill",
        "+script|kill",
      ],
    },
  ];
}

/** The `ACL SETUSER` command of a user (the password is in it: never log it). */
export function setUserCommand(user: AclUser): string[] {
  return ["ACL", "SETUSER", user.name, "reset", "on", `>${user.password.reveal()}`, ...user.rules];
}

/** The runtime's environment file: its user and derived password, for `EnvironmentFile=`. */
export function runtimeEnvFile(user: AclUser): string {
  return [
    "# Written by mn-redis-ha join --acl (mode 0600): the runtime's least-privilege credentials.",
    `MN_REDIS_USERNAME=${user.name}`,
    `MN_REDIS_PASSWORD=${user.password.reveal()}`,
    "",
  ].join("\n");
}
