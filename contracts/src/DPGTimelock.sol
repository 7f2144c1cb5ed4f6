// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {TimelockController} from "@openzeppelin/contracts/governance/TimelockController.sol";

/// @title The DPG governance timelock
/// @notice OpenZeppelin's TimelockController under DPG's name, so that it is deployed from DPG's
/// artifacts. Deployed with a 2-day delay, no proposer, anyone as executor (address(0)) and the
/// deployer as a temporary admin, who grants the proposer and canceller roles to DPGGovernor and
/// then renounces the admin role: from then on only a passed proposal changes anything.
contract DPGTimelock is TimelockController {
    constructor(uint256 minDelay, address[] memory proposers, address[] memory executors, address admin)
        TimelockController(minDelay, proposers, executors, admin)
    {}
}
