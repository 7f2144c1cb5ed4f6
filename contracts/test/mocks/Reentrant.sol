// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {DevToken} from "../../src/DevToken.sol";

/// Records one attempt to call back into a target while a transfer or payment is in progress.
abstract contract ReentryRecorder {
    address public target;
    bytes public payload;
    bool public armed;
    bool public attempted;
    bool public reentryOk;
    bytes public reentryResult;

    function arm(address target_, bytes calldata payload_) external {
        target = target_;
        payload = payload_;
        armed = true;
    }

    function _reenter() internal {
        if (!armed) return;
        armed = false;
        attempted = true;
        (reentryOk, reentryResult) = target.call(payload);
    }
}

/// A malicious ERC-20: once armed, every transfer calls back into the target (the vault).
contract ReentrantToken is DevToken, ReentryRecorder {
    constructor() DevToken("Reentrant", "RE", 18) {}

    function _update(address from, address to, uint256 value) internal override {
        super._update(from, to, value);
        if (from != address(0) && to != address(0)) _reenter();
    }
}

/// A malicious ETH recipient: once armed, receiving ETH calls back into the target (the vault).
contract ReentrantReceiver is ReentryRecorder {
    receive() external payable {
        _reenter();
    }
}

/// A recipient that refuses ETH.
contract RejectingReceiver {
    receive() external payable {
        revert("no ETH please");
    }
}
