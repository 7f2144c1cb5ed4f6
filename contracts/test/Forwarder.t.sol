// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {VaultSetup} from "./utils/VaultSetup.sol";
import {Vm} from "./utils/Vm.sol";
import {Vault} from "../src/Vault.sol";
import {DevToken} from "../src/DevToken.sol";
import {DepositForwarder} from "../src/DepositForwarder.sol";
import {ForwarderFactory} from "../src/ForwarderFactory.sol";
import {NoReturnToken} from "./mocks/NoReturnToken.sol";
import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {Clones} from "@openzeppelin/contracts/proxy/Clones.sol";

/// Pays ETH the way another contract (an exchange's hot wallet, a multisig) often does.
contract Payer {
    function transferTo(address payable to) external payable {
        to.transfer(msg.value); // 2,300 gas for the receiver
    }

    function sendTo(address payable to) external payable returns (bool) {
        return to.send(msg.value);
    }
}

contract ForwarderTest is VaultSetup {
    event Deposit(bytes32 indexed depositId, uint64 indexed account, address indexed token, uint256 amount);
    event ForwarderDeployed(uint64 indexed account, address forwarder);

    ForwarderFactory internal factory;
    Payer internal payer;
    address internal stranger = address(0x5742);

    function setUp() public override {
        super.setUp();
        factory = new ForwarderFactory(address(vault));
        payer = new Payer();
    }

    function nextDepositId() internal view returns (bytes32) {
        return keccak256(abi.encode(block.chainid, address(vault), vault.depositNonce()));
    }

    function tokens(address a) internal pure returns (address[] memory list) {
        list = new address[](1);
        list[0] = a;
    }

    // ---------------------------------------------------------------- addresses

    function test_AddressIsKnownBeforeDeploymentAndIsWhereItDeploys() public {
        address predicted = factory.addressOf(42);
        bytes32 hash = keccak256(factory.forwarderCode());
        vm.assertEq(hash, factory.forwarderCodeHash(), "code hash");
        address byHand = address(uint160(uint256(keccak256(abi.encodePacked(
            bytes1(0xff), address(factory), bytes32(uint256(42)), hash)))));
        vm.assertEq(predicted, byHand, "CREATE2 address");
        vm.assertEq(predicted.code.length, 0, "nothing deployed yet");

        vm.expectEmit(true, true, true, true, address(factory));
        emit ForwarderDeployed(42, predicted);
        vm.prank(stranger); // anyone may deploy it: it can only forward to the vault for account 42
        address deployed = factory.deploy(42);
        vm.assertEq(deployed, predicted, "deployed where predicted");
        vm.assertEq(predicted.code.length, 51, "the 51-byte proxy");
        DepositForwarder f = DepositForwarder(payable(deployed));
        vm.assertEq(uint256(f.account()), 42, "account");
        vm.assertEq(f.vault(), address(vault), "vault");
        vm.assertEq(factory.deploy(42), predicted, "a second deploy returns the same forwarder");
    }

    function testFuzz_TwoAccountsNeverShareAnAddress(uint64 a, uint64 b) public view {
        vm.assume(a != b);
        vm.assertTrue(factory.addressOf(a) != factory.addressOf(b), "two accounts, one address");
    }

    function testFuzz_AnAccountsAddressIsNoneOfTheContracts(uint64 a) public view {
        address at = factory.addressOf(a);
        vm.assertTrue(at != address(vault) && at != address(factory) && at != factory.implementation(), "collision");
    }

    function test_AnotherFactoryGivesOtherAddresses() public {
        ForwarderFactory other = new ForwarderFactory(address(vault));
        vm.assertTrue(other.addressOf(7) != factory.addressOf(7), "factories share addresses");
    }

    function test_AccountZeroHasNoForwarder() public {
        vm.expectRevert(ForwarderFactory.ZeroAccount.selector);
        factory.deploy(0);
    }

    // ---------------------------------------------------------------- ETH

    function test_ETHSentBeforeDeploymentIsSweptToTheVault() public {
        address payable at = payable(factory.addressOf(42));
        vm.deal(user, 2 ether);
        vm.prank(user);
        (bool ok,) = at.call{value: 2 ether}("");
        vm.assertTrue(ok, "a plain transfer to the undeployed address");

        vm.expectEmit(true, true, true, true, address(vault));
        emit Deposit(nextDepositId(), 42, address(0), 2 ether);
        vm.prank(stranger);
        factory.sweep(42, tokens(address(0)));
        vm.assertEq(at.balance, 0, "forwarder emptied");
        vm.assertEq(vault.holdings(address(0)), 2 ether, "in the vault");
    }

    function test_ETHSentAfterDeploymentByAnyMeansIsSwept() public {
        address payable at = payable(factory.deploy(42));
        vm.deal(user, 10 ether);
        vm.startPrank(user);
        (bool ok,) = at.call{value: 1 ether}("");
        vm.assertTrue(ok, "plain call");
        payer.transferTo{value: 2 ether}(at); // 2,300 gas: the proxy answers without delegating
        vm.assertTrue(payer.sendTo{value: 3 ether}(at), "send");
        (ok,) = at.call{value: 4 ether}(hex"deadbeef"); // with a note in the calldata
        vm.assertTrue(ok, "with calldata");
        vm.stopPrank();
        vm.assertEq(at.balance, 10 ether, "all arrived");

        vm.expectEmit(true, true, true, true, address(vault));
        emit Deposit(nextDepositId(), 42, address(0), 10 ether);
        uint256 swept = DepositForwarder(at).sweepETH();
        vm.assertEq(swept, 10 ether, "swept");
        vm.assertEq(at.balance, 0, "forwarder emptied");
        vm.assertEq(vault.holdings(address(0)), 10 ether, "in the vault");
    }

    function test_APlainEIP1167CloneWouldFailA2300GasTransfer() public {
        // why the proxy has its own receive path: a cold DELEGATECALL alone costs 2,600 gas
        address clone = Clones.clone(factory.implementation());
        vm.deal(address(this), 2 ether);
        vm.assertFalse(payer.sendTo{value: 1 ether}(payable(clone)), "a 2300-gas send to a plain clone");
        vm.assertTrue(payer.sendTo{value: 1 ether}(payable(factory.deploy(5))), "to the forwarder");
    }

    // ---------------------------------------------------------------- tokens

    function test_TokensSentBeforeAndAfterDeploymentAreSwept() public {
        address at = factory.addressOf(9);
        usdt.mint(user, 700e6);
        vm.prank(user);
        usdt.transfer(at, 500e6); // before deployment: a token transfer needs nothing from the receiver
        factory.deploy(9);
        vm.prank(user);
        usdt.transfer(at, 200e6);

        vm.expectEmit(true, true, true, true, address(vault));
        emit Deposit(nextDepositId(), 9, address(usdt), 700e6);
        vm.prank(stranger);
        uint256 swept = DepositForwarder(payable(at)).sweepToken(IERC20(address(usdt)));
        vm.assertEq(swept, 700e6, "swept");
        vm.assertEq(usdt.balanceOf(at), 0, "forwarder emptied");
        vm.assertEq(usdt.balanceOf(address(vault)), 700e6, "in the vault");
        vm.assertEq(usdt.allowance(at, address(vault)), 0, "no allowance left behind");
    }

    function test_ATokenWithoutReturnValuesIsSweptTwice() public {
        NoReturnToken odd = new NoReturnToken();
        address at = factory.addressOf(11);
        odd.mint(at, 5e6);
        factory.sweep(11, tokens(address(odd)));
        odd.mint(at, 3e6);
        vm.expectEmit(true, true, true, true, address(vault));
        emit Deposit(nextDepositId(), 11, address(odd), 3e6);
        factory.sweep(11, tokens(address(odd)));
        vm.assertEq(odd.balanceOf(address(vault)), 8e6, "in the vault");
        vm.assertEq(odd.balanceOf(at), 0, "forwarder emptied");
    }

    function test_AFeeOnTransferTokenIsCreditedWhatArrives() public {
        address at = factory.addressOf(12);
        feeCredited.mint(at, 1000);
        vm.expectEmit(true, true, true, true, address(vault));
        emit Deposit(nextDepositId(), 12, address(feeCredited), 990);
        factory.sweep(12, tokens(address(feeCredited)));
        vm.assertEq(feeCredited.balanceOf(at), 0, "forwarder emptied");
    }

    function test_ATokenTheVaultRefusesStaysInTheForwarder() public {
        address at = factory.addressOf(13);
        feeRefused.mint(at, 1000);
        vm.expectRevert(abi.encodeWithSelector(Vault.FeeOnTransferRefused.selector, address(feeRefused), 1000, 990));
        factory.sweep(13, tokens(address(feeRefused)));
        vm.assertEq(feeRefused.balanceOf(at), 1000, "still at the address");
    }

    function test_OneSweepTakesETHAndSeveralTokens() public {
        address at = factory.addressOf(21);
        vm.deal(at, 1 ether);
        usdt.mint(at, 10e6);
        wbtc.mint(at, 2e8);
        address[] memory list = new address[](3);
        (list[0], list[1], list[2]) = (address(0), address(usdt), address(wbtc));
        factory.sweep(21, list);
        vm.assertEq(vault.depositNonce(), 3, "three deposits");
        vm.assertEq(at.balance + usdt.balanceOf(at) + wbtc.balanceOf(at), 0, "forwarder emptied");
        vm.assertEq(vault.holdings(address(wbtc)), 2e8, "WBTC in the vault");
    }

    function test_AnEmptyForwarderSweepsNothing() public {
        address payable at = payable(factory.deploy(3));
        vm.assertEq(DepositForwarder(at).sweepETH(), 0, "ETH");
        vm.assertEq(DepositForwarder(at).sweepToken(IERC20(address(usdt))), 0, "USDT");
        factory.sweep(3, tokens(address(0)));
        vm.assertEq(vault.depositNonce(), 0, "no deposit");
    }

    // ---------------------------------------------------------------- nobody redirects funds

    function test_ReinitializationIsRefused() public {
        DepositForwarder f = DepositForwarder(payable(factory.deploy(42)));
        vm.prank(stranger);
        vm.expectRevert(abi.encodeWithSelector(DepositForwarder.NotFactory.selector, stranger));
        f.initialize(666);
        vm.prank(address(factory));
        vm.expectRevert(abi.encodeWithSelector(DepositForwarder.AlreadyInitialized.selector, uint64(42)));
        f.initialize(666);
        vm.assertEq(uint256(f.account()), 42, "account unchanged");
    }

    function test_TheImplementationItselfTakesNothing() public {
        DepositForwarder impl = DepositForwarder(payable(factory.implementation()));
        vm.assertEq(impl.factory(), address(factory), "factory");
        vm.expectRevert(abi.encodeWithSelector(DepositForwarder.NotFactory.selector, address(this)));
        impl.initialize(1);
        vm.deal(user, 1 ether);
        vm.prank(user);
        (bool ok,) = address(impl).call{value: 1 ether}("");
        vm.assertFalse(ok, "plain ETH to the implementation");
        vm.expectRevert(DepositForwarder.NotInitialized.selector);
        impl.sweepETH();
    }

    function testFuzz_SweepsOnlyEverReachTheVaultForTheAccount(uint64 account, uint96 amount, address caller) public {
        vm.assume(account != 0 && amount != 0 && caller != address(0));
        address at = factory.addressOf(account);
        vm.deal(at, amount);
        usdt.mint(at, amount);
        address[] memory list = new address[](2);
        (list[0], list[1]) = (address(0), address(usdt));
        uint256 callerBalance = caller.balance;
        vm.recordLogs();
        vm.prank(caller);
        factory.sweep(account, list);
        vm.assertEq(vault.holdings(address(0)), amount, "ETH in the vault");
        vm.assertEq(vault.holdings(address(usdt)), amount, "USDT in the vault");
        vm.assertEq(caller.balance, callerBalance, "the caller got nothing");
        uint256 deposits;
        bytes32 topic = keccak256("Deposit(bytes32,uint64,address,uint256)");
        Vm.Log[] memory logs = vm.getRecordedLogs();
        for (uint256 i; i < logs.length; ++i) {
            if (logs[i].emitter == address(vault) && logs[i].topics[0] == topic) {
                vm.assertEq(uint256(logs[i].topics[2]), uint256(account), "tagged with the account");
                ++deposits;
            }
        }
        vm.assertEq(deposits, 2, "two deposits");
    }

    // ---------------------------------------------------------------- gas

    function test_Gas() public {
        address payable at = payable(factory.addressOf(77));
        vm.deal(at, 1 ether);
        usdt.mint(at, 5e6);
        uint256 g = gasleft();
        factory.deploy(77);
        uint256 deployGas = g - gasleft();
        vm.assertLe(deployGas, 80_000, "deploying a forwarder");

        vm.deal(address(this), 1 ether);
        (bool ok,) = at.call{value: 1 ether, gas: 0}(""); // the callee gets only the 2,300-gas stipend
        vm.assertTrue(ok, "plain ETH within the stipend");
        (ok,) = at.call{gas: 20}("");
        vm.assertTrue(ok, "the plain path runs in 20 gas");

        g = gasleft();
        DepositForwarder(at).sweepETH();
        // the account's first deposit also writes its cumulative deposit counter (the escape
        // hatch's depositedOf): about 22,000 gas of a new storage slot
        vm.assertLe(g - gasleft(), 65_000, "sweepETH");
        g = gasleft();
        DepositForwarder(at).sweepToken(IERC20(address(usdt)));
        vm.assertLe(g - gasleft(), 90_000, "sweepToken");
    }
}
