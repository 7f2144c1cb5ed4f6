// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {CheatBase} from "./TestBase.sol";
import {Vault} from "../../src/Vault.sol";

/// EIP-712 signing for the vault, computed independently of the vault's own hashing, so the
/// tests also check that the vault hashes exactly the documented typed data.
abstract contract VaultSigning is CheatBase {
    bytes32 internal constant DOMAIN_TYPEHASH =
        keccak256("EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)");
    bytes32 internal constant WITHDRAWAL_TYPEHASH =
        keccak256("Withdrawal(bytes32 id,uint64 account,address token,address to,uint256 amount,uint256 deadline)");
    bytes32 internal constant CHANGE_SIGNERS_TYPEHASH =
        keccak256("ChangeSigners(address[5] signers,uint256 nonce,uint256 deadline)");
    bytes32 internal constant CONFIGURE_TYPEHASH = keccak256(
        "Configure(address token,uint256 largeThreshold,uint256 dailyLimit,bool refuseFeeTokens,uint256 nonce,uint256 deadline)"
    );
    bytes32 internal constant SET_GUARDIAN_TYPEHASH =
        keccak256("SetGuardian(address guardian,uint256 nonce,uint256 deadline)");
    bytes32 internal constant UNPAUSE_TYPEHASH = keccak256("Unpause(uint256 nonce,uint256 deadline)");

    function domainSeparatorFor(address vault, uint256 chainId) internal pure returns (bytes32) {
        return keccak256(abi.encode(DOMAIN_TYPEHASH, keccak256("DPG Vault"), keccak256("1"), chainId, vault));
    }

    function typedDigest(address vault, uint256 chainId, bytes32 structHash) internal pure returns (bytes32) {
        return keccak256(abi.encodePacked("\x19\x01", domainSeparatorFor(vault, chainId), structHash));
    }

    function withdrawalStructHash(Vault.Withdrawal memory w) internal pure returns (bytes32) {
        return keccak256(abi.encode(WITHDRAWAL_TYPEHASH, w.id, w.account, w.token, w.to, w.amount, w.deadline));
    }

    function withdrawalDigest(address vault, Vault.Withdrawal memory w) internal view returns (bytes32) {
        return typedDigest(vault, block.chainid, withdrawalStructHash(w));
    }

    function changeSignersDigest(address vault, address[5] memory s, uint256 nonce, uint256 deadline)
        internal
        view
        returns (bytes32)
    {
        return typedDigest(
            vault,
            block.chainid,
            keccak256(abi.encode(CHANGE_SIGNERS_TYPEHASH, keccak256(abi.encode(s)), nonce, deadline))
        );
    }

    function configureDigest(address vault, Vault.TokenConfig memory c, uint256 nonce, uint256 deadline)
        internal
        view
        returns (bytes32)
    {
        return typedDigest(
            vault,
            block.chainid,
            keccak256(
                abi.encode(
                    CONFIGURE_TYPEHASH, c.token, c.largeThreshold, c.dailyLimit, c.refuseFeeTokens, nonce, deadline
                )
            )
        );
    }

    function setGuardianDigest(address vault, address g, uint256 nonce, uint256 deadline)
        internal
        view
        returns (bytes32)
    {
        return typedDigest(vault, block.chainid, keccak256(abi.encode(SET_GUARDIAN_TYPEHASH, g, nonce, deadline)));
    }

    function unpauseDigest(address vault, uint256 nonce, uint256 deadline) internal view returns (bytes32) {
        return typedDigest(vault, block.chainid, keccak256(abi.encode(UNPAUSE_TYPEHASH, nonce, deadline)));
    }

    /// 65-byte (r, s, v) signatures of `digest` by `keys`, in the given order.
    function signInOrder(uint256[] memory keys, bytes32 digest) internal pure returns (bytes[] memory sigs) {
        sigs = new bytes[](keys.length);
        for (uint256 i; i < keys.length; ++i) {
            (uint8 v, bytes32 r, bytes32 s) = vm.sign(keys[i], digest);
            sigs[i] = abi.encodePacked(r, s, v);
        }
    }

    /// Signatures of `digest` by `keys`, sorted by signer address ascending, as the vault wants.
    function sign(uint256[] memory keys, bytes32 digest) internal pure returns (bytes[] memory) {
        return signInOrder(sortByAddress(keys), digest);
    }

    function sortByAddress(uint256[] memory keys) internal pure returns (uint256[] memory sorted) {
        sorted = new uint256[](keys.length);
        for (uint256 i; i < keys.length; ++i) {
            uint256 k = keys[i];
            address a = vm.addr(k);
            uint256 j = i;
            while (j > 0 && vm.addr(sorted[j - 1]) > a) {
                sorted[j] = sorted[j - 1];
                --j;
            }
            sorted[j] = k;
        }
    }

    function keys3(uint256 a, uint256 b, uint256 c) internal pure returns (uint256[] memory k) {
        k = new uint256[](3);
        (k[0], k[1], k[2]) = (a, b, c);
    }

    function keys2(uint256 a, uint256 b) internal pure returns (uint256[] memory k) {
        k = new uint256[](2);
        (k[0], k[1]) = (a, b);
    }
}
